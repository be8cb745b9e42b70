-- apply.lua: the body of the function library that applies one side of one
-- edge, atomically (README, "Redis key layout"). The engine prepends the
-- library header and the configuration's constants:
--   REL[r] = {n = properties, short = {...}, jkey = {'"p":', ...},
--             typ = {0 int | 1 float | 2 bool, ...}, amount = {bool, ...},
--             order = {0 none | 1 desc | 2 asc, ...}, last = {'limit - 1', ...},
--             cf = {'p:count', ...}, tf = {'p:total', ...},
--             hm = {'count', 'p1:count', 'p1:total', ...}, pos = {field = index in hm},
--             tops = {property index, ...}}
--   TOMB_TTL (seconds), DEDUP_RANK (-dedup_ids - 1), both strings;
--   EXPIRE_STEP (ms: TOMB_TTL / 16)
-- and registers `apply` under the library's function name, `apply2` under
-- that name and "_both", `rebuild` under that name and "_rebuild".
--
-- Three functions: apply (one side), apply2 (both sides of the event in one
-- atomic call, where both sides' keys are on one server), and rebuild (one
-- step of relationctl rebuild: see it at the end).
-- apply KEYS: side (hash: statistics, '@' .. counterpart = edge, '!' .. id
--       NUL counterpart = undelivered record, '#last', '#fence',
--       '#rebuild'), seen, tomb, then one top key per property with a top
--       (in property order)
-- apply ARGV: relation index, epoch, now (ms), event date, counterpart,
--       event id, op (a|e|s|d), version ("" = none), then pairs: property
--       index, value ("n" = null, else an integer: float weights in
--       millionths)
-- apply2 KEYS: the direct side's keys, then the reverse side's; ARGV:
--       relation index, epoch, now, date, profile a, profile b, event id,
--       op, version, then pairs. Returns {status, record or '', status,
--       record or ''} (direct, reverse).
--
-- The fence: a call that fails with an error (Redis's, not a refusal)
-- writes its epoch in the side's '#fence'; a later call of the same epoch
-- on that side (pipelined behind it by the same engine) is then refused
-- with 'FENCED' and writes nothing, so that the engine, which sends the
-- failed call again under a new epoch, applies a side's events in their
-- order. The first call of another epoch removes the fence.
--
-- A rebuild under way on a side (its '#rebuild' marker): an apply that
-- changes an edge also counts it in the rebuild's copy (see shadow and
-- rebuild), keys of the side's hash tag it names from the side's key
-- ('P{R:S:X}:rebuild', 'P{R:S:X}:rebuild:top:<p>'): undeclared, but in the
-- side's slot on a cluster too. Without a marker it costs nothing more than
-- one more field in the first HMGET.
--
-- Returns {1} applied without a trigger, {1, record} applied, {2} or
-- {2, record} duplicate (the record of its undelivered triggers), {3} stale,
-- or the error 'INVALID <reason>': the event's fault, decided before any
-- write (any other error is Redis's, and the call is made again: a side's
-- id joins seen as its last write, so a call stopped half-way by an error
-- is made again in full, every write before being idempotent).
-- The record (MessagePack) holds what the triggers are rendered from:
--   {event date, kind (1 attach, 2 change, 3 detach),
--    the stats fields before (HMGET of hm: strings or false),
--    old weights (array, false = unset) or false, new weights or false,
--    {ZRANGE WITHSCORES of each top, after}}
-- Redis keeps state; the daemon formats. Numbers are integers: float weights
-- and totals in millionths. A side costs 8 calls in the common case (a
-- strengthen of an edge with two tops): HMGET, ZSCORE of seen, ZADD and
-- ZRANGE per top, one HSET, ZADD of seen.

local MAX = 1000000000000000 -- |weight| after strengthen, in units
local EXACT = 9007199254740992 - 2000000000000000 -- 2^53 less the largest change
-- A total beyond this is refused: 2^63 less a margin wider than a double's
-- error there and the largest change.
local LIMIT = 9200000000000000000

-- Compares two int64 decimal strings: -1, 0 or 1.
local function vcmp(x, y)
  local xn, yn = x:sub(1, 1) == '-', y:sub(1, 1) == '-'
  if xn ~= yn then return xn and -1 or 1 end
  if xn then x, y = y:sub(2), x:sub(2) end
  if #x ~= #y then return #x < #y and -1 or 1 end
  if x == y then return 0 end
  return x < y and -1 or 1
end

-- Decimal strings of small indexes (relations, properties) to numbers: a
-- table lookup costs less than tonumber (two strtod calls).
local IDX = {}
for i = 1, (#REL > 16 and #REL or 16) do IDX['' .. i] = i end

-- Scratch tables, two sets per relation (one per side of a call), reused
-- across calls (fewer allocations and less garbage): arrays are overwritten
-- up to their length.
for r = 1, #REL do
  local C = REL[r]
  C.s = {}
  for k = 1, 2 do
    local S = {old = {}, new = {}, acct = {}, parts = {}, h = {}, tops = {}, fields = {}, deltas = {}, vals = {}}
    S.rec = {false, false, false, false, false, S.tops}
    -- HMGET arguments: the statistics, the newest score of seen, then the
    -- edge's field (set per call, at S.ie)
    S.get = {}
    for i = 1, #C.hm do S.get[i] = C.hm[i] end
    S.get[#C.hm + 1] = '#last'
    S.ie = #C.hm + 2
    S.get[S.ie] = false
    S.get[S.ie + 1] = '#fence'
    S.get[S.ie + 2] = '#rebuild'
    C.s[k] = S
  end
end

-- A stored edge's weights into the array out (a property's value in units,
-- a bool as 1 or 0, false when unset), and its version (or nil).
local function weights_of(C, raw, out)
  local d = cjson.decode(raw)
  local w = d.weights
  for i = 1, C.n do
    local v = w[C.short[i]]
    if v == nil then v = false
    elseif v == true then v = 1
    elseif v == false then v = 0 end
    out[i] = v
  end
  return out, type(d.version) == 'string' and d.version or nil
end

-- What weights w (as weights_of gives them) add to a side's statistics,
-- times sign, added into acc (field of the layout -> number). A sum that
-- leaves the exact range of a double is flushed first (HINCRBY into the
-- hash k): every number in acc stays exact.
local function add(acc, k, f, d)
  local v = (acc[f] or 0) + d
  if v >= EXACT or v <= -EXACT then
    redis.call('HINCRBY', k, f, string.format('%d', acc[f] or 0))
    v = d
  end
  acc[f] = v
end

local function contrib(C, w, sign, acc, k)
  add(acc, k, 'count', sign)
  for i = 1, C.n do
    local v = w[i]
    if v then
      if C.typ[i] ~= 2 or v == 1 then add(acc, k, C.cf[i], sign) end
      if C.amount[i] then add(acc, k, C.tf[i], sign * v) end
    end
  end
end

-- acc added into the hash k (HINCRBY of each field that is not 0).
local function flush(acc, k)
  for f, v in pairs(acc) do
    if v ~= 0 then redis.call('HINCRBY', k, f, string.format('%d', v)) end
  end
end

-- Phase 1 of a side: reads only (the dedup check, the edge, the statistics)
-- and every decision, so that a refusal, or a key of another type in the
-- way, stops the call before anything is written. Sets S.status: 1 (to
-- apply), 2 (duplicate, S.pending its undelivered record), 3 (stale).
-- Returns a refusal message, or nil.
local FENCED = {}

local function prepare(C, S, keys, o, epoch, now, cp, ev_id, op, version, args, first)
  local n, typ = C.n, C.typ
  local k_side, k_seen, k_tomb = keys[o + 1], keys[o + 2], keys[o + 3]
  S.k_side, S.k_seen, S.ktomb, S.cp = k_side, k_seen, o + 3, cp
  -- Ids are remembered per edge: the same id on another edge is another event.
  local member = ev_id .. '\0' .. cp
  S.member = member

  -- The edge as stored, the newest score of seen and the statistics before,
  -- in one read.
  local get, ie = S.get, S.ie
  get[ie] = '@' .. cp
  local before = redis.call('HMGET', k_side, unpack(get))
  local raw, l, fence = before[ie], before[ie - 1], before[ie + 1]
  -- false without a rebuild; never nil: Lua 5.1 gives a key set to nil a
  -- slot all the same, and S, full, would be rehashed on every call
  S.rb = before[ie + 2]
  before[ie + 2], before[ie + 1], before[ie], before[ie - 1] = nil, nil, nil, nil -- the statistics alone
  if fence == epoch then return FENCED end
  S.unfence = fence and true
  l = l and l + 0
  S.before = before

  -- A remembered id is a duplicate. The id joins seen as the side's last
  -- write (remember), so that a call stopped half-way by an error is made
  -- again in full. Scores increase strictly per side (whatever the clocks of
  -- the daemons), so trimming drops the oldest: the newest score is kept in
  -- the side's hash ('#last') while the side has edges.
  if redis.call('ZSCORE', k_seen, member) then
    S.status = 2
    S.pending = redis.call('HGET', k_side, '!' .. member)
    return nil
  end
  local score = now + 0
  if l and l >= score then
    score = l + 1
    now = string.format('%d', score)
  end
  S.now, S.score, S.l = now, score, l

  local old, oldver = false, nil
  if raw then old, oldver = weights_of(C, raw, S.old) end
  local edges = (before[1] or '0') + 0 -- before this event
  S.edges = edges

  local tomb = nil
  if not old then tomb = redis.call('GET', keys[o + 3]) or nil end
  local known = oldver or tomb
  if version ~= '' and known and vcmp(version, known) < 0 then
    S.status = 3
    return nil
  end
  local newver = known
  if version ~= '' then newver = version end

  local new = false
  if op ~= 'd' then
    new = S.new
    for i = 1, n do new[i] = old and old[i] end
    for j = first, #args, 2 do
      local i, a = IDX[args[j]], args[j + 1]
      if a == 'n' then
        new[i] = false
      else
        local v = a + 0
        if op == 's' and typ[i] ~= 2 then
          v = (new[i] or 0) + v
          if v > MAX or v < -MAX then
            return 'weights.' .. C.short[i] .. ': result of strengthen out of range'
          end
        end
        new[i] = v
      end
    end
  end

  local kind = nil
  if old and not new then kind = 3
  elseif new and not old then kind = 1
  elseif new then
    for i = 1, n do
      if old[i] ~= new[i] then kind = 2; break end
    end
  end

  -- Statistics: computed here while every value is exact in a double
  -- (|v| < 2^53); exact int64 HINCRBYs beyond, up to LIMIT.
  local dc = kind == 1 and 1 or kind == 3 and -1 or 0
  local gone = dc == -1 and edges <= 1
  local fields, deltas, vals, nf = S.fields, S.deltas, S.vals, 0
  local exact = true
  if kind and not gone then
    if dc ~= 0 then nf = 1; fields[1] = 'count'; deltas[1] = dc end
    for i = 1, n do
      local ov, nv = old and old[i], new and new[i]
      local t = typ[i]
      local d = ((nv and (t ~= 2 or nv == 1)) and 1 or 0) - ((ov and (t ~= 2 or ov == 1)) and 1 or 0)
      if d ~= 0 then nf = nf + 1; fields[nf] = C.cf[i]; deltas[nf] = d end
      if C.amount[i] then
        d = (nv or 0) - (ov or 0)
        if d ~= 0 then nf = nf + 1; fields[nf] = C.tf[i]; deltas[nf] = d end
      end
    end
    local pos = C.pos
    for j = 1, nf do
      local v = (before[pos[fields[j]]] or '0') + deltas[j]
      vals[j] = v
      if v >= EXACT or v <= -EXACT then
        exact = false
        if v > LIMIT or v < -LIMIT then
          return 'weights: ' .. fields[j] .. ' of this side would leave the range of a 64-bit integer'
        end
      end
    end
  end
  -- (S.old and S.new are the scratch arrays; wold and wnew may be false)
  -- (false, never nil: see S.rb)
  S.status, S.wold, S.wnew, S.oldver, S.newver, S.tomb, S.kind =
    1, old, new, oldver or false, newver or false, tomb or false, kind or false
  S.gone, S.nf, S.exact = gone, nf, exact
  return nil
end

-- The id joins the side's recent ids: the side's last write. Each call
-- costs about 10k instructions, so two are made only now and then: the
-- window is trimmed when a score crosses a multiple of 8 (it holds at most 7
-- ids more than the window), and its lifetime is renewed when a score
-- crosses a multiple of TTL/16. Numbers reach redis.call as strings: Lua
-- would format them with printf.
local function remember(S)
  local k_seen, score, l = S.k_seen, S.score, S.l
  redis.call('ZADD', k_seen, S.now, S.member)
  if not l or math.floor(score / EXPIRE_STEP) ~= math.floor(l / EXPIRE_STEP) then
    redis.call('EXPIRE', k_seen, TOMB_TTL)
  end
  if not l or math.floor(score / 8) ~= math.floor(l / 8) then
    redis.call('ZREMRANGEBYRANK', k_seen, '0', DEDUP_RANK)
  end
end

-- A rebuild under way on the side (its '#rebuild' marker, read with the
-- statistics; see rebuild below): the edge as this call leaves it is counted
-- in the rebuild's copy, once, whether or not the rebuild's scan has passed
-- it. The copy's '@' field of the counterpart says what it counts of the
-- edge: absent nothing, '1' the edge as stored, '' nothing (detached), else
-- the edge's value as this call writes it. Called before the side's hash is
-- written, so that the call made again after an error counts nothing twice
-- (the copy then counts the new value already). The copy's keys share the
-- side's hash tag (one slot), named from the side's key.
local function shadow(C, S, json)
  local base = S.k_side:sub(1, -5) -- 'P{R:S:X}:'
  local k_rb, cp = base .. 'rebuild', S.cp
  local got = redis.call('HMGET', k_rb, '#epoch', '@' .. cp)
  if got[1] ~= S.rb then
    -- the rebuild stopped (its copy expired): its marker and top copies go
    redis.call('HDEL', S.k_side, '#rebuild')
    for _, i in ipairs(C.tops) do redis.call('UNLINK', base .. 'rebuild:top:' .. C.short[i]) end
    return
  end
  local acc, counted, new = {}, got[2], S.wnew
  if counted == '1' then
    if S.wold then contrib(C, S.wold, -1, acc, k_rb) end
  elseif counted and counted ~= '' then
    contrib(C, (weights_of(C, counted, S.acct)), -1, acc, k_rb)
  end
  if new then contrib(C, new, 1, acc, k_rb) end
  flush(acc, k_rb)
  for _, i in ipairs(C.tops) do
    local k, v = base .. 'rebuild:top:' .. C.short[i], new and new[i]
    if v then
      redis.call('ZADD', k, string.format('%d', v), cp)
    else
      redis.call('ZREM', k, cp)
    end
  end
  redis.call('HSET', k_rb, '@' .. cp, json)
end

-- Phase 2 of a side prepared with status 1: the writes. Returns the reply of
-- the side: {1} or {1, record}.
local function commit(C, S, keys, date, version)
  local n, typ = C.n, C.typ
  local k_side, cp, get = S.k_side, S.cp, S.get
  local old, new, kind, tomb, now = S.wold, S.wnew, S.kind, S.tomb, S.now
  local oldver, newver = S.oldver, S.newver
  local fields, deltas, vals, nf, before = S.fields, S.deltas, S.vals, S.nf, S.before

  -- The tops first: a key of another type there (foreign data) stops the
  -- call before the side's hash changes (the call is made again once it is
  -- removed; ZADD and ZREM of these values are idempotent).
  if kind then
    local tk = S.ktomb
    for i = 1, n do
      if C.order[i] ~= 0 then
        tk = tk + 1
        local ov, nv = old and old[i], new and new[i]
        if nv ~= ov then
          if nv then
            redis.call('ZADD', keys[tk], string.format('%d', nv), cp)
          else
            redis.call('ZREM', keys[tk], cp)
          end
        end
      end
    end
  end

  -- The side's hash is written by one HSET: the edge, the statistics, the
  -- record; h collects its field/value pairs.
  local h, nh = S.h, 0
  if new then
    if kind or oldver ~= newver then
      local parts, np = S.parts, 0
      for i = 1, n do
        local v = new[i]
        if v then
          np = np + 1
          if typ[i] == 2 then
            parts[np] = C.jkey[i] .. (v == 1 and 'true' or 'false')
          else
            parts[np] = C.jkey[i] .. string.format('%d', v)
          end
        end
      end
      h[1] = get[S.ie]
      h[2] = '{"version":' .. (newver and ('"' .. newver .. '"') or 'null') ..
             ',"weights":{' .. table.concat(parts, ',', 1, np) .. '}}'
      nh = 2
    end
    if tomb then redis.call('DEL', keys[S.ktomb]) end
  else
    if newver and (old or version ~= '') then
      redis.call('SET', keys[S.ktomb], newver, 'EX', TOMB_TTL)
    end
  end
  if S.rb and kind then shadow(C, S, new and h[2] or '') end

  if not kind then
    if S.edges > 0 then
      h[nh + 1], h[nh + 2] = '#last', now
      nh = nh + 2
    end
    if nh > 0 then redis.call('HSET', k_side, unpack(h, 1, nh)) end
    remember(S)
    return {1}
  end
  h[nh + 1], h[nh + 2] = '#last', now
  nh = nh + 2

  if kind == 3 then
    -- the edge goes, and with the last edge the statistics
    if S.gone then
      -- the edge, '#last', every statistic (and '#fence'; '#rebuild' stays)
      redis.call('HDEL', k_side, unpack(get, 1, S.ie + 1))
      nh = 0
    else
      redis.call('HDEL', k_side, get[S.ie])
    end
  end
  if S.exact then
    local pos = C.pos
    for j = 1, nf do
      h[nh + 1] = fields[j]
      h[nh + 2] = string.format('%d', vals[j])
      nh = nh + 2
    end
  else
    for j = 1, nf do
      redis.call('HINCRBY', k_side, fields[j], string.format('%d', deltas[j]))
    end
  end

  local tops = S.tops
  for j, i in ipairs(C.tops) do
    if C.order[i] == 1 then
      tops[j] = redis.call('ZREVRANGE', keys[S.ktomb + j], '0', C.last[i], 'WITHSCORES')
    else
      tops[j] = redis.call('ZRANGE', keys[S.ktomb + j], '0', C.last[i], 'WITHSCORES')
    end
  end

  local rec = S.rec
  rec[1], rec[2], rec[3], rec[4], rec[5] = date, kind, before, old, new
  local record = cmsgpack.pack(rec)
  h[nh + 1] = '!' .. S.member
  h[nh + 2] = record
  redis.call('HSET', k_side, unpack(h, 1, nh + 2))
  remember(S)
  return {1, record}
end

-- A prepared side's reply: {1[, record]}, {2[, record]} or {3}.
local function finish(C, S, keys, date, version)
  if S.unfence then redis.call('HDEL', S.k_side, '#fence') end
  if S.status == 1 then return commit(C, S, keys, date, version) end
  if S.status == 2 then
    if S.pending then return {2, S.pending} end
    return {2}
  end
  -- stale: only remembered
  if S.edges > 0 then redis.call('HSET', S.k_side, '#last', S.now) end
  remember(S)
  return {3}
end

-- One side. KEYS: side, seen, tomb, tops; ARGV: relation index, now, date,
-- counterpart, event id, op, version, then pairs.
local function fenced(k)
  return redis.error_reply('FENCED ' .. k .. ': an earlier event of this side failed; ' ..
                           'sent again in order')
end

local function apply1(keys, args)
  local C = REL[IDX[args[1]]]
  local S = C.s[1]
  local version = args[8]
  local why = prepare(C, S, keys, 0, args[2], args[3], args[5], args[6], args[7], version,
                      args, 9)
  if why == FENCED then return fenced(keys[1]) end
  if why then return redis.error_reply('INVALID ' .. why) end
  return finish(C, S, keys, args[4], version)
end

-- An error (a key of another type, Redis out of memory...): the sides
-- fenced for the rest of the epoch (a side whose hash is in the way cannot
-- be, and fails alike), then the error to the engine.
local function failed(e, epoch, k1, k2)
  redis.pcall('HSET', k1, '#fence', epoch)
  if k2 then redis.pcall('HSET', k2, '#fence', epoch) end
  if type(e) == 'table' and e.err then return redis.error_reply(e.err) end
  return redis.error_reply(tostring(e))
end

local function apply(keys, args)
  local ok, r = pcall(apply1, keys, args)
  if ok then return r end
  return failed(r, args[2], keys[1])
end

-- Both sides of the event, atomically: both are prepared (every refusal
-- decided, nothing written), then both written, or neither when either
-- refuses. KEYS: the direct side's keys, then the reverse side's;
-- ARGV: relation index, now, date, profile a, profile b, event id, op,
-- version, then pairs. Returns {status, record or '', status, record or ''}.
local function apply2_(keys, args)
  local C = REL[IDX[args[1]]]
  local D, R = C.s[1], C.s[2]
  local half = #keys / 2
  local epoch, now, ev_id, op, version = args[2], args[3], args[7], args[8], args[9]
  -- A side fenced stops the event on both sides: its other side is fenced
  -- too, so that a later event of this epoch on that side does not go
  -- before it (it is sent again, in order, with the failed call).
  local why = prepare(C, D, keys, 0, epoch, now, args[6], ev_id, op, version, args, 10)
  if why == FENCED then
    redis.pcall('HSET', keys[half + 1], '#fence', epoch)
    return fenced(keys[1])
  end
  if not why then
    why = prepare(C, R, keys, half, epoch, now, args[5], ev_id, op, version, args, 10)
    if why == FENCED then
      redis.pcall('HSET', keys[1], '#fence', epoch)
      return fenced(keys[half + 1])
    end
  end
  if why then return redis.error_reply('INVALID ' .. why) end
  local d = finish(C, D, keys, args[4], version)
  local r = finish(C, R, keys, args[4], version)
  return {d[1], d[2] or '', r[1], r[2] or ''}
end

local function apply2(keys, args)
  local ok, r = pcall(apply2_, keys, args)
  if ok then return r end
  return failed(r, args[2], keys[1], keys[#keys / 2 + 1])
end

-- rebuild: one step of the rebuild of a side's statistics and tops from its
-- edges (relationctl rebuild), in steps so that no call holds Redis for
-- long: each step reads one HSCAN page of the side's edges (about COUNT).
-- KEYS: side, its copy ('P{R:S:X}:rebuild'), one top key per property with
-- a top (in property order), then as many top copies
-- ('P{R:S:X}:rebuild:top:<p>'); ARGV: relation index, token (the rebuild's
-- own random id), cursor ("0": the first step), COUNT. Returns {next cursor,
-- edges counted by this step}; the cursor "0" says that the side was
-- rebuilt: its statistics and tops written from the copy, the copy gone.
--
-- The copy is a hash: the statistics of the edges counted so far, '#epoch'
-- (the token), and one field per counted edge ('@' .. counterpart: see
-- shadow above). The first step writes the token into the copy and into the
-- side's '#rebuild' marker; from then on every apply that changes an edge of
-- the side counts it in the copy too (shadow), and a step counts only the
-- edges of its page the copy does not name yet. An HSCAN returns every field
-- present from the first step to the last at least once (maybe more than
-- once, in any order, whatever the hash's resizing): so when the scan ends,
-- the copy counts every edge of the side exactly once, at its current value
-- (an edge the scan has not reached is counted by the apply that changes it,
-- one it reached is corrected by that apply, one detached is taken out).
-- The last step then swaps the copy in, atomically. A side whose edges fit
-- in the first page is rebuilt by that step alone, without a marker.
--
-- The copy expires REBUILD_TTL ms after the last step (its top copies 10 s
-- later: an apply finds the copy, and writes the top copies, only while they
-- all live): a rebuild stopped half-way (relationctl killed) costs the
-- side's applies only until then, and the first apply after that removes
-- its marker. A step that finds the
-- marker or the copy not its own (expired, or another rebuild of the side
-- started since) fails with 'REBUILD'; the other rebuild goes on.
local REBUILD_TTL, REBUILD_TOP_TTL = '60000', '70000'

local function rebuild(keys, args)
  local C = REL[IDX[args[1]]]
  local token, cursor = args[2], args[3]
  local k_side, k_rb, nt = keys[1], keys[2], #C.tops
  if cursor == '0' then
    -- a rebuild of this side under way or stopped is superseded
    redis.call('UNLINK', k_rb, unpack(keys, 3 + nt, 2 + 2 * nt))
  elseif redis.call('HGET', k_side, '#rebuild') ~= token or
         redis.call('HGET', k_rb, '#epoch') ~= token then
    if redis.call('HGET', k_rb, '#epoch') == false then
      redis.call('HDEL', k_side, '#rebuild')
      redis.call('UNLINK', k_rb, unpack(keys, 3 + nt, 2 + 2 * nt))
    end
    return redis.error_reply('REBUILD ' .. k_side .. ': stopped, another rebuild of the ' ..
                             'side started or this one paused over ' .. REBUILD_TTL .. ' ms')
  end
  local page = redis.call('HSCAN', k_side, cursor, 'MATCH', '@*', 'COUNT', args[4])
  local nxt, f = page[1], page[2]
  local whole = cursor == '0' and nxt == '0'
  if cursor == '0' and not whole then
    redis.call('HSET', k_rb, '#epoch', token)
    redis.call('HSET', k_side, '#rebuild', token)
  end
  if not whole then redis.call('PEXPIRE', k_rb, REBUILD_TTL) end

  -- the edges of the page the copy does not count yet
  local known = {}
  if not whole and #f > 0 then
    local names = {}
    for j = 1, #f, 2 do names[#names + 1] = f[j] end
    known = redis.call('HMGET', k_rb, unpack(names))
  end
  local acc, w, marks, topv, count = {}, {}, {}, {}, 0
  for j = 1, nt do topv[j] = {} end
  for j = 1, #f, 2 do
    if not known[(j + 1) / 2] then
      weights_of(C, f[j + 1], w)
      contrib(C, w, 1, acc, k_rb)
      count = count + 1
      local cp = f[j]:sub(2)
      for t, i in ipairs(C.tops) do
        if w[i] then
          local tv = topv[t]
          tv[#tv + 1], tv[#tv + 2] = string.format('%d', w[i]), cp
        end
      end
      marks[#marks + 1], marks[#marks + 2] = f[j], '1'
    end
  end
  flush(acc, k_rb)
  if not whole and #marks > 0 then redis.call('HSET', k_rb, unpack(marks)) end
  for t = 1, nt do
    local tv = topv[t]
    for s = 1, #tv, 1000 do
      redis.call('ZADD', keys[2 + nt + t], unpack(tv, s, math.min(s + 999, #tv)))
    end
    if not whole then redis.call('PEXPIRE', keys[2 + nt + t], REBUILD_TOP_TTL) end
  end
  if nxt ~= '0' then return {nxt, count} end

  -- the swap: the statistics (every field of the layout, or none with no
  -- edge), the tops (the old ones freed in the background), the copy gone
  local vals = redis.call('HMGET', k_rb, unpack(C.hm))
  redis.call('HDEL', k_side, '#rebuild', unpack(C.hm))
  if vals[1] and vals[1] ~= '0' then
    local h = {}
    for j = 1, #C.hm do
      if vals[j] and vals[j] ~= '0' then h[#h + 1], h[#h + 2] = C.hm[j], vals[j] end
    end
    redis.call('HSET', k_side, unpack(h))
  end
  for t = 1, nt do
    redis.call('UNLINK', keys[2 + t])
    if redis.call('EXISTS', keys[2 + nt + t]) == 1 then
      redis.call('RENAME', keys[2 + nt + t], keys[2 + t])
      redis.call('PERSIST', keys[2 + t])
    end
  end
  redis.call('UNLINK', k_rb)
  return {'0', count}
end
