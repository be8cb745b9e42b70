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
-- and registers `apply` under the library's function name.
--
-- KEYS: side (hash: statistics, '@' .. counterpart = edge, '!' .. id NUL
--       counterpart = undelivered record), seen, tomb, then one top key per
--       property with a top (in property order)
-- ARGV: relation index, now (ms), event date, counterpart, event id,
--       op (a|e|s|d), version ("" = none), then pairs: property index, value
--       ("n" = null, else an integer: float weights in millionths)
--
-- Returns {1} applied without a trigger, {1, record} applied, {2} or
-- {2, record} duplicate (the record of its undelivered triggers), {3} stale,
-- or the error 'INVALID <reason>': the event's fault, decided before any
-- write (any other error is Redis's, and the call is made again).
-- The record (MessagePack) holds what the triggers are rendered from:
--   {event date, kind (1 attach, 2 change, 3 detach),
--    the stats fields before (HMGET of hm: strings or false),
--    old weights (array, false = unset) or false, new weights or false,
--    {ZRANGE WITHSCORES of each top, after}}
-- Redis keeps state; the daemon formats. Numbers are integers: float weights
-- and totals in millionths. A side costs 8 calls in the common case (a
-- strengthen of an edge with two tops): ZRANGE and ZADD of seen, HMGET,
-- ZADD and ZRANGE per top, one HSET.

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

-- Scratch tables, one set per relation, reused across calls (fewer
-- allocations and less garbage): arrays are overwritten up to their length.
for r = 1, #REL do
  local C = REL[r]
  C.s_old, C.s_new, C.s_parts, C.s_h, C.s_tops = {}, {}, {}, {}, {}
  C.s_fields, C.s_deltas = {}, {}
  C.s_rec = {false, false, false, false, false, C.s_tops}
  -- HMGET arguments: the edge's field (set per call), the newest score of
  -- seen, then the statistics
  C.s_get = {false, '#last'}
  for i = 1, #C.hm do C.s_get[i + 2] = C.hm[i] end
end

local function apply(keys, args)
  local C = REL[tonumber(args[1])]
  local k_side, k_seen, k_tomb = keys[1], keys[2], keys[3]
  local now, date, cp, ev_id = args[2], args[3], args[4], args[5]
  local op, version = args[6], args[7]
  local n, typ = C.n, C.typ
  -- Ids are remembered per edge: the same id on another edge is another event.
  local member = ev_id .. '\0' .. cp

  -- The edge as stored, the newest score of seen and the statistics before,
  -- in one read.
  local get = C.s_get
  get[1] = '@' .. cp
  local before = redis.call('HMGET', k_side, unpack(get))
  local raw = table.remove(before, 1)
  local l = table.remove(before, 1)
  l = l and tonumber(l)

  -- The id joins the side's recent ids, unless it is there (a duplicate).
  -- Scores increase strictly per side (whatever the clocks of the daemons),
  -- so trimming drops the oldest: the newest score is kept in the side's
  -- hash ('#last') while the side has edges. Each call costs about 10k
  -- instructions, so two are made only now and then: the window is trimmed
  -- when a score crosses a multiple of 8 (it holds at most 7 ids more than
  -- the window), and its lifetime is renewed when a score crosses a multiple
  -- of TTL/16. Numbers reach redis.call as strings: Lua would format them
  -- with printf.
  local score = tonumber(now)
  if l and l >= score then
    score = l + 1
    now = string.format('%d', score)
  end
  if redis.call('ZADD', k_seen, 'NX', now, member) == 0 then
    local pending = redis.call('HGET', k_side, '!' .. member)
    if pending then return {2, pending} end
    return {2}
  end
  if not l or math.floor(score / EXPIRE_STEP) ~= math.floor(l / EXPIRE_STEP) then
    redis.call('EXPIRE', k_seen, TOMB_TTL)
  end
  if not l or math.floor(score / 8) ~= math.floor(l / 8) then
    redis.call('ZREMRANGEBYRANK', k_seen, '0', DEDUP_RANK)
  end

  local old, oldver = false, nil
  if raw then
    local d = cjson.decode(raw)
    if type(d.version) == 'string' then oldver = d.version end
    local w = d.weights
    old = C.s_old
    for i = 1, n do
      local v = w[C.short[i]]
      if v == nil then v = false
      elseif v == true then v = 1
      elseif v == false then v = 0 end
      old[i] = v
    end
  end
  local edges = tonumber(before[1] or '0') -- before this event

  local tomb = nil
  if not old then tomb = redis.call('GET', k_tomb) or nil end
  local known = oldver or tomb
  if version ~= '' and known and vcmp(version, known) < 0 then
    if edges > 0 then redis.call('HSET', k_side, '#last', now) end
    return {3}
  end
  local newver = known
  if version ~= '' then newver = version end

  local new = false
  if op ~= 'd' then
    new = C.s_new
    for i = 1, n do new[i] = old and old[i] end
    for j = 8, #args, 2 do
      local i, a = tonumber(args[j]), args[j + 1]
      if a == 'n' then
        new[i] = false
      else
        local v = tonumber(a)
        if op == 's' and typ[i] ~= 2 then
          v = (new[i] or 0) + v
          if v > MAX or v < -MAX then
            redis.call('ZREM', k_seen, member)
            return redis.error_reply('INVALID weights.' .. C.short[i] .. ': result of strengthen out of range')
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

  -- Statistics (before any write: a refusal changes nothing). Computed
  -- here while every value is exact in a double (|v| < 2^53); exact int64
  -- HINCRBYs beyond, up to LIMIT.
  local dc = kind == 1 and 1 or kind == 3 and -1 or 0
  local gone = dc == -1 and edges <= 1
  local fields, deltas, nf = C.s_fields, C.s_deltas, 0
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
      local v = tonumber(before[pos[fields[j]]] or '0') + deltas[j]
      if v >= EXACT or v <= -EXACT then
        exact = false
        if v > LIMIT or v < -LIMIT then
          redis.call('ZREM', k_seen, member)
          return redis.error_reply('INVALID weights: ' .. fields[j] ..
                                   ' of this side would leave the range of a 64-bit integer')
        end
      end
    end
  end

  -- The side's hash is written by one HSET: the edge, the statistics, the
  -- record; h collects its field/value pairs.
  local h, nh = C.s_h, 0
  if new then
    if kind or oldver ~= newver then
      local parts, np = C.s_parts, 0
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
      h[1] = get[1]
      h[2] = '{"version":' .. (newver and ('"' .. newver .. '"') or 'null') ..
             ',"weights":{' .. table.concat(parts, ',', 1, np) .. '}}'
      nh = 2
    end
    if tomb then redis.call('DEL', k_tomb) end
  else
    if newver and (old or version ~= '') then
      redis.call('SET', k_tomb, newver, 'EX', TOMB_TTL)
    end
  end

  if not kind then
    if edges > 0 then
      h[nh + 1], h[nh + 2] = '#last', now
      nh = nh + 2
    end
    if nh > 0 then redis.call('HSET', k_side, unpack(h, 1, nh)) end
    return {1}
  end
  h[nh + 1], h[nh + 2] = '#last', now
  nh = nh + 2

  if kind == 3 then
    -- the edge goes, and with the last edge the statistics
    if gone then
      -- the edge, '#last', every statistic
      redis.call('HDEL', k_side, unpack(get))
      nh = 0
    else
      redis.call('HDEL', k_side, get[1])
    end
  end
  local tk = 3
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
  if exact then
    local pos = C.pos
    for j = 1, nf do
      h[nh + 1] = fields[j]
      h[nh + 2] = string.format('%d', tonumber(before[pos[fields[j]]] or '0') + deltas[j])
      nh = nh + 2
    end
  else
    for j = 1, nf do
      redis.call('HINCRBY', k_side, fields[j], string.format('%d', deltas[j]))
    end
  end

  local tops = C.s_tops
  for j, i in ipairs(C.tops) do
    if C.order[i] == 1 then
      tops[j] = redis.call('ZREVRANGE', keys[3 + j], '0', C.last[i], 'WITHSCORES')
    else
      tops[j] = redis.call('ZRANGE', keys[3 + j], '0', C.last[i], 'WITHSCORES')
    end
  end

  local rec = C.s_rec
  rec[1], rec[2], rec[3], rec[4], rec[5] = date, kind, before, old, new
  local record = cmsgpack.pack(rec)
  h[nh + 1] = '!' .. member
  h[nh + 2] = record
  redis.call('HSET', k_side, unpack(h, 1, nh + 2))
  return {1, record}
end
