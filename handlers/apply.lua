-- apply.lua: the body of the function library that applies one side of one
-- edge, atomically, in key layout 2 (README, "Redis key layout"). The engine
-- prepends the library header and the configuration's constants:
--   REL[r] = {n = properties, short = {...},
--             typ = {0 int | 1 float | 2 bool, ...}, amount = {bool, ...},
--             order = {0 none | 1 desc | 2 asc, ...}, last = {'limit - 1', ...},
--             cf = {'p:count', ...}, tf = {'p:total', ...},
--             hm = {'count', 'p1:count', 'p1:total', ...}, pos = {field = index in hm},
--             tops = {property index, ...},
--             slot = {slot of property 1, ...} (1-based, from Pschema),
--             nslots = the number of slots of the relation}
--   TOMB_TTL (seconds), DEDUP_RANK (-dedup_ids - 1), both strings;
--   EXPIRE_STEP (ms: TOMB_TTL / 16; no longer used)
-- and registers `apply` under the library's function name, `apply2` under
-- that name and "_both", `rebuild` under that name and "_rebuild",
-- `migrate` under that name and "_migrate".
--
-- Four functions: apply (one side), apply2 (both sides of the event in one
-- atomic call, where both sides' keys are on one server), rebuild (one step
-- of relationctl rebuild: see it at the end) and migrate (the conversion of
-- one layout-1 side: see convert).
-- apply KEYS: side (hash: statistics, '@' .. counterpart = the packed edge,
--       '#w' or '#z' (the duplicate window), '#fence', '#rebuild'), ids (the
--       window past 7 event keys: a ring string of 8-byte keys, '#z' the
--       position of the next one), out (the outbox: event key = record),
--       tomb, then one top key per property with a top (in property order),
--       then, only while the keyspace is in layout 1 (migrating), the
--       layout-1 'seen' (the engine tells by the number of keys)
-- apply ARGV: relation index, epoch, now (ms), event date, counterpart,
--       event key (8 bytes: SHA-1 of id NUL counterpart), op (a|e|s|d),
--       version ("" = none), then pairs: property index, value ("n" = null,
--       else an integer: float weights in millionths)
-- apply2 KEYS: the direct side's keys, then the reverse side's (as many);
--       ARGV: relation index, epoch, now, date, profile a, profile b, the
--       direct side's event key, the reverse side's, op, version, then
--       pairs. Returns {status, record or '', status, record or ''}
--       (direct, reverse). The reverse side, prepared second, takes what
--       follows from the stored edge and the event alone (old and new
--       weights, kind, the statistics' changes, the packed value of a
--       version alike) from the direct side when both store the same edge.
--
-- A packed edge: '[<version>;]<v1>,<v2>,...', one position per slot
-- (REL[r].slot), empty when unset, trailing empty positions left out.
-- Statistics that are 0 are absent (HDEL, never "0"). A side whose last edge
-- went keeps only its window field (and '#fence'/'#rebuild') and expires
-- after TOMB_TTL; the event that attaches an edge to it makes it persistent.
--
-- Tops are bounded: 'top:<p>' exists only while the side's count > L (the
-- top's limit) and holds a prefix of the order of between min(L, p:count)
-- and 2L edges; a side with count <= L has its top computed from its edges
-- (by the daemon, from the record's edges: one HSCAN). Ties are ordered by member BYTES (bcmp): Lua's '<' on strings is
-- strcoll, which follows the server's locale.
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
-- Migration on touch: a side with layout 1's '#last', or (while 'seen' is
-- passed) a side with no window whose 'seen' exists, is converted first
-- (convert), in the same call, before the event's own decisions: an event
-- refused after that leaves the side converted (the conversion changes no
-- content). The conversion names the side's rebuild copies as above.
--
-- Returns {1} applied without a trigger, {1, record} applied, {2} or
-- {2, record} duplicate (the record of its undelivered triggers), {3} stale,
-- or the error 'INVALID <reason>': the event's fault, decided before any
-- write (any other error is Redis's, and the call is made again: a side's
-- window is written with its last writes, so that a call stopped half-way
-- by an error is made again in full, every write before being idempotent).
-- The record (MessagePack) holds what the triggers are rendered from:
--   {event date, kind (1 attach, 2 change, 3 detach),
--    the stats fields before (HMGET of hm: strings or false),
--    old weights (array, false = unset) or false, new weights or false,
--    {the first L of each top after, flat {member, score, ...}, or false:
--     the top is every edge of the side with the property (count after <=
--     L), ordered by the daemon from the edges},
--    [only with a false top: the side's edges before the event, flat
--     {'@' .. counterpart, packed value, ...} in HSCAN's order; the
--     event's own edge is the new weights]}
-- Redis keeps state; the daemon formats. Numbers are integers: float weights
-- and totals in millionths. A side costs in the common case (a strengthen
-- of an edge, the window in the hash): HMGET, then with count > L a ZRANGE
-- and a ZADD per top whose value changes, with count <= L one HSCAN of the
-- edges for every top (none when the edge is the side's only one; an
-- HGETALL when a top's zset is created or refilled), then HSET of out
-- and one HSET of the side (plus GET of the tombstone for a new edge).
--
-- Choices where the contract leaves room: with engine.dedup_ids < 7 the hash
-- window still keeps 7 keys; a ring longer than engine.dedup_ids (the
-- window made smaller by a reload) keeps its keys and overwrites its first
-- dedup_ids positions; '#z' without its ids (not written so) starts the
-- ring again by appending; an incremental top change where the zset holds
-- no member but e and is not complete takes e out (then refills). The
-- rebuild copy's markers ('=' as stored, 'x' detached) are no packed value
-- (digits, '-', ',' and ';' only).
--
-- Failure: bad stored data (an edge that is not a packed value, a key of
-- another type) is a Redis error: the call fails and the side is fenced.

local MAX = 1000000000000000 -- |weight| after strengthen, in units
local EXACT = 9007199254740992 - 2000000000000000 -- 2^53 less the largest change
-- A total beyond this is refused: 2^63 less a margin wider than a double's
-- error there and the largest change.
local LIMIT = 9200000000000000000
local TTL_MS = TOMB_TTL .. '000' -- an edgeless side's lifetime (ms)
local DEDUP_IDS = -DEDUP_RANK - 1

-- Hot globals as upvalues (an upvalue is read without a table lookup; a
-- global costs one, redis.call two), bound by the first call of the
-- library's functions (its load environment has no redis.call nor string).
local call, sformat, sbyte, sfind, tunpack, tonum, cpack
local function bind()
  call, sformat, sbyte, sfind = redis.call, string.format, string.byte, string.find
  tunpack, tonum, cpack = unpack, tonumber, cmsgpack.pack
end

-- Small integers to their decimal text and back by a table lookup: a
-- string.format or a string's conversion to a number costs a C call and a
-- printf or strtod (counts and most int totals are small).
local NSTR, NNUM = {}, {}
for v = 0, 255 do
  local s = '' .. v
  NSTR[v], NNUM[s] = s, v
end
-- v (an integer) as decimal text
local function dec(v)
  return NSTR[v] or sformat('%d', v)
end
-- decimal text s as a number (nil when it is none)
local function num(s)
  return NNUM[s] or tonum(s)
end

-- Compares two int64 decimal strings: -1, 0 or 1.
local function vcmp(x, y)
  local xn, yn = x:sub(1, 1) == '-', y:sub(1, 1) == '-'
  if xn ~= yn then return xn and -1 or 1 end
  if xn then x, y = y:sub(2), x:sub(2) end
  if #x ~= #y then return #x < #y and -1 or 1 end
  if x == y then return 0 end
  return x < y and -1 or 1
end

-- Compares two strings byte by byte (memcmp, then the shorter first):
-- true when a < b. Lua's '<' would use the locale's collation. Eight bytes
-- of each per string.byte (a C call costs ten times a comparison); a byte
-- past the end is nil, taken as -1 (the shorter first).
local function blt(a, b)
  if a == b then return false end
  local k = 1
  while true do
    local a1, a2, a3, a4, a5, a6, a7, a8 = sbyte(a, k, k + 7)
    local b1, b2, b3, b4, b5, b6, b7, b8 = sbyte(b, k, k + 7)
    if a1 ~= b1 then return (a1 or -1) < (b1 or -1) end
    if a2 ~= b2 then return (a2 or -1) < (b2 or -1) end
    if a3 ~= b3 then return (a3 or -1) < (b3 or -1) end
    if a4 ~= b4 then return (a4 or -1) < (b4 or -1) end
    if a5 ~= b5 then return (a5 or -1) < (b5 or -1) end
    if a6 ~= b6 then return (a6 or -1) < (b6 or -1) end
    if a7 ~= b7 then return (a7 or -1) < (b7 or -1) end
    if a8 ~= b8 then return (a8 or -1) < (b8 or -1) end
    k = k + 8
  end
end

-- call(cmd, key, ...list) in calls of at most 1000 elements (an even
-- number: field/value and score/member pairs stay together): Lua's unpack
-- stops at about 8,000 (a large side converted from layout 1).
local function chunked(cmd, key, list)
  for s = 1, #list, 1000 do
    call(cmd, key, tunpack(list, s, math.min(s + 999, #list)))
  end
end

-- Decimal strings of small indexes (relations, properties) to numbers: a
-- table lookup costs less than tonumber (two strtod calls).
local IDX = {}
for i = 1, (#REL > 16 and #REL or 16) do IDX['' .. i] = i end

-- Per relation: each top's limit as a number (L), the property of each slot
-- (ofslot), and scratch tables, two sets (one per side of a call), reused
-- across calls (fewer allocations and less garbage): arrays are overwritten
-- up to their length.
for r = 1, #REL do
  local C = REL[r]
  C.L, C.ofslot, C.parts, C.tpat = {}, {}, {}, {}
  for i = 1, C.n do
    C.L[i] = C.last[i] + 1
    C.ofslot[C.slot[i]] = i
  end
  -- per top: a pattern capturing its property's position in a packed edge
  -- (after the version)
  for j = 1, #C.tops do
    local skip = ''
    for _ = 2, C.slot[C.tops[j]] do skip = skip .. '[^,]*,' end
    C.tpat[j] = '^' .. skip .. '([^,]*)'
  end
  -- with one or two tops: one pattern capturing both positions (in slot
  -- order; C.tcap[j]: top j's capture), so that an edge costs one match
  -- (a position left out at the end, or a comma missing, captures '')
  if #C.tops == 1 or #C.tops == 2 then
    local maxs, capof = 0, {}
    for j = 1, #C.tops do
      local sl = C.slot[C.tops[j]]
      capof[sl] = j
      if sl > maxs then maxs = sl end
    end
    local pat, ncap = '^', 0
    C.tcap = {}
    for sl = 1, maxs do
      if sl > 1 then pat = pat .. ',?' end
      if capof[sl] then
        ncap = ncap + 1
        C.tcap[capof[sl]] = ncap
        pat = pat .. '([^,]*)'
      else
        pat = pat .. '[^,]*'
      end
    end
    C.tall = pat
  end
  -- the side hash's fields that are no edge (scan_edges)
  C.nonedge = {['#w'] = true, ['#z'] = true, ['#fence'] = true, ['#rebuild'] = true,
               ['#last'] = true}
  for j = 1, #C.hm do C.nonedge[C.hm[j]] = true end
  C.s = {}
  for k = 1, 2 do
    local S = {old = {}, new = {}, oldt = {}, newt = {}, acct = {}, h = {}, tops = {}, fields = {}, deltas = {}, vals = {},
               del = {}, tv = {}, tm = {}, ts = {}, tn = {}, rt = {}, za = {}}
    for j = 1, #C.tops do S.tv[j], S.tm[j], S.ts[j], S.tn[j], S.rt[j] = {}, {}, {}, 0, {} end
    S.rec = {false, false, false, false, false, S.tops}
    -- HMGET arguments: the statistics, the window, then the edge's field
    -- (set per call, at S.ie), the fence, a rebuild's marker, layout 1's
    -- '#last' (a side to convert)
    S.get = {}
    for i = 1, #C.hm do S.get[i] = C.hm[i] end
    S.iw = #C.hm + 1
    S.get[S.iw] = '#w'
    S.get[S.iw + 1] = '#z'
    S.ie = #C.hm + 3
    S.get[S.ie] = false
    S.get[S.ie + 1] = '#fence'
    S.get[S.ie + 2] = '#rebuild'
    S.get[S.ie + 3] = '#last'
    C.s[k] = S
  end
end

-- A packed edge's weights into the array out (a property's value in units,
-- a bool as 1 or 0, false when unset), and its version (or nil); txt (if
-- given) gets each value's text. A slot the configuration does not use is
-- skipped; a position that is not a number is an error (foreign data).
local function weights_of(C, raw, out, txt)
  for i = 1, C.n do out[i] = false end
  local ver, from = nil, 1
  local semi = raw:find(';', 1, true)
  if semi then ver, from = raw:sub(1, semi - 1), semi + 1 end
  local ofslot, slot = C.ofslot, 1
  while true do
    local comma = raw:find(',', from, true)
    local tok = raw:sub(from, (comma or 0) - 1)
    if tok ~= '' then
      local v = NNUM[tok] or tonum(tok)
      if not v then error('edge value ' .. raw .. ': position ' .. slot .. ' is not a number') end
      local i = ofslot[slot]
      if i then
        out[i] = v
        if txt then txt[i] = tok end
      end
    end
    if not comma then break end
    from, slot = comma + 1, slot + 1
  end
  return out, ver
end

-- Weights w (as weights_of gives them) and a version (or false/nil)
-- packed; txt (if given): the text of w's values where known (false: to be
-- formatted).
local function pack(C, w, ver, txt)
  local parts, slot, hi = C.parts, C.slot, 0
  for s = 1, C.nslots do parts[s] = '' end
  for i = 1, C.n do
    local v = w[i]
    if v then
      local s = slot[i]
      parts[s] = txt and txt[i] or NSTR[v] or sformat('%d', v)
      if s > hi then hi = s end
    end
  end
  local body = table.concat(parts, ',', 1, hi)
  if ver then return ver .. ';' .. body end
  return body
end

-- What weights w add to a side's statistics, times sign, added into acc
-- (field of the layout -> number). A sum that leaves the exact range of a
-- double is flushed first (HINCRBY into the hash k): every number in acc
-- stays exact.
local function add(acc, k, f, d)
  local v = (acc[f] or 0) + d
  if v >= EXACT or v <= -EXACT then
    call('HINCRBY', k, f, sformat('%d', acc[f] or 0))
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
    if v ~= 0 then call('HINCRBY', k, f, sformat('%d', v)) end
  end
end

-- ---- tops ----

-- The top of property i in key cut to the first 2L of its order (the
-- zset's order is ascending: desc keeps its highest ranks).
local function cut(C, i, key)
  local L = C.L[i]
  if C.order[i] == 1 then
    call('ZREMRANGEBYRANK', key, '0', sformat('%d', -2 * L - 1))
  else
    call('ZREMRANGEBYRANK', key, sformat('%d', 2 * L), '-1')
  end
end

-- The order of a top: true when (sa, ma) ranks before (sb, mb) (desc:
-- score descending, then member descending; asc: both ascending).
local function ranks_before(desc, sa, ma, sb, mb)
  if sa ~= sb then
    if desc then return sa > sb end
    return sa < sb
  end
  if desc then return blt(mb, ma) end
  return blt(ma, mb)
end

-- A top's entries are kept in three arrays, scores vs (numbers), their
-- text ss (decimal integers) and members ms, n of them, in the order.
-- insert puts (v, s, m) at its rank and keeps at most K entries: returns
-- the new n.
local function insert(desc, vs, ss, ms, n, K, v, s, m)
  local p = n + 1
  -- ranks_before(desc, v, m, vs[p - 1], ms[p - 1]), inlined
  if desc then
    while p > 1 do
      local pv = vs[p - 1]
      if v > pv or (v == pv and blt(ms[p - 1], m)) then p = p - 1 else break end
    end
  else
    while p > 1 do
      local pv = vs[p - 1]
      if v < pv or (v == pv and blt(m, ms[p - 1])) then p = p - 1 else break end
    end
  end
  if p > K then return n end
  if n < K then n = n + 1 end
  for q = n, p + 1, -1 do vs[q], ss[q], ms[q] = vs[q - 1], ss[q - 1], ms[q - 1] end
  vs[p], ss[p], ms[p] = v, s, m
  return n
end

-- Every top of the side from its edges (one HGETALL, read before this
-- call's writes; the edge this call writes counted at its new value): top
-- j's first 2L edges of the order in S.tv/ts/tm[j], S.tn[j]. Only the
-- positions of the tops' properties are read (C.tpat). No HGETALL when
-- this call's edge is the side's only one.
local NOTHING = {}

local function scan_edges(C, S)
  -- a side whose only edge (if any) is this call's has nothing to read
  local others = S.edges - (S.wold and 1 or 0)
  local all = others > 0 and call('HGETALL', S.k_side) or NOTHING
  local cp, new, tops, tpat, tall, tcap = S.cp, S.wnew, C.tops, C.tpat, C.tall, C.tcap
  local ecp = S.get[S.ie] -- '@' .. cp
  local tv, tm, ts, tn, order, L = S.tv, S.tm, S.ts, S.tn, C.order, C.L
  local find, match, nonedge = sfind, string.match, C.nonedge
  for j = 1, #tops do tn[j] = 0 end
  for k = 1, #all, 2 do
    local f = all[k]
    -- an edge: '@' .. its counterpart (m); the fields the layout names
    -- otherwise are passed over by a table lookup (a C call costs more)
    local m = not nonedge[f] and f ~= ecp and match(f, '^@(.*)')
    if m then
      local raw = all[k + 1]
      local semi = find(raw, ';', 1, true)
      local from = semi and semi + 1 or 1
      local c1, c2
      if tall then c1, c2 = match(raw, tall, from) end
      for j = 1, #tops do local i = tops[j]
        local text
        if tall then
          if tcap[j] == 1 then text = c1 else text = c2 end
        else
          text = match(raw, tpat[j], from)
        end
        if text and text ~= '' then
          local v = NNUM[text] or tonum(text)
          if not v then error('edge value ' .. raw .. ': not a packed value') end
          tn[j] = insert(order[i] == 1, tv[j], ts[j], tm[j], tn[j], 2 * L[i], v, text, m)
        end
      end
    end
  end
  if new then
    for j = 1, #tops do local i = tops[j]
      local v = new[i]
      if v then
        tn[j] = insert(order[i] == 1, tv[j], ts[j], tm[j], tn[j], 2 * L[i], v,
                       S.tnew[i] or dec(v), cp)
      end
    end
  end
end

-- The side's edges before this call's writes, flat {'@' .. counterpart,
-- packed value, ...} in the order HSCAN gives them (one page for a small
-- side; the pages of a hashtable side appended in the cursor's order, as
-- the module's scan of the key gives them).
local function side_edges(S)
  local page = call('HSCAN', S.k_side, '0', 'MATCH', '@*', 'COUNT', '1000')
  local nxt, f = page[1], page[2]
  while nxt ~= '0' do
    page = call('HSCAN', S.k_side, nxt, 'MATCH', '@*', 'COUNT', '1000')
    nxt = page[1]
    local g, n = page[2], #f
    for q = 1, #g do f[n + q] = g[q] end
  end
  return f
end

-- Top j's first k entries written as the whole zset key (ZADD).
local function zadd_top(S, j, key, k)
  local za, ss, ms = S.za, S.ts[j], S.tm[j]
  for q = 1, k do za[2 * q - 1], za[2 * q] = ss[q], ms[q] end
  if k > 0 then call('ZADD', key, tunpack(za, 1, 2 * k)) end
end

-- The record's top j: its first L entries, flat {member, score, ...} (as
-- ZRANGE WITHSCORES gives them), in the reused table S.rt[j].
local function record_top(S, j, L)
  local t, ss, ms, n = S.rt[j], S.ts[j], S.tm[j], S.tn[j]
  local k = n < L and n or L
  for q = 1, k do t[2 * q - 1], t[2 * q] = ms[q], ss[q] end
  for q = 2 * k + 1, #t do t[q] = nil end
  return t
end

-- Top j (property i, key) of a side this call changes, cb/ca the side's
-- count before and after, pcb/pca the count of the property's edges:
-- writes its key as the bounded-top rule says and returns the record's
-- top; ca > L (a top of at most L edges after is the record's edges). S.tv/
-- tm/tn hold the tops from the edges when cb <= L (scan_edges).
local function top_change(C, S, j, i, key, cb, ca, pcb, pca)
  local L, desc, cp = C.L[i], C.order[i] == 1, S.cp
  local ov, nv = S.wold and S.wold[i], S.wnew and S.wnew[i]
  if cb <= L then
    -- the side grows past L (the caller keeps ca <= L to the record's
    -- edges): the zset is created
    zadd_top(S, j, key, S.tn[j])
    return record_top(S, j, L)
  end
  if ov == nv then
    if desc then return call('ZREVRANGE', key, '0', C.last[i], 'WITHSCORES') end
    return call('ZRANGE', key, '0', C.last[i], 'WITHSCORES')
  end
  -- the zset before, in the order
  local flat
  if desc then flat = call('ZREVRANGE', key, '0', '-1', 'WITHSCORES')
  else flat = call('ZRANGE', key, '0', '-1', 'WITHSCORES') end
  local vs, ss, ms, n, at, lastother = S.tv[j], S.ts[j], S.tm[j], #flat / 2, nil, nil
  for q = 1, n do
    local m, sc = flat[2 * q - 1], flat[2 * q]
    vs[q], ss[q], ms[q] = num(sc), sc, m
    if m == cp then at = q else lastother = q end
  end
  local complete = n == pcb
  local stay = nv and (complete or (lastother ~= nil and
                                    ranks_before(desc, nv, cp, vs[lastother], ms[lastother])))
  if at then
    for q = at, n - 1 do vs[q], ss[q], ms[q] = vs[q + 1], ss[q + 1], ms[q + 1] end
    n = n - 1
  end
  if stay then
    local sv = dec(nv)
    call('ZADD', key, sv, cp)
    n = insert(desc, vs, ss, ms, n, n + 1, nv, sv, cp)
  elseif at then
    call('ZREM', key, cp)
  end
  if n > 2 * L then
    cut(C, i, key)
    n = 2 * L
  end
  S.tn[j] = n
  if n < L and pca > n then
    -- refill from every edge of the side
    scan_edges(C, S)
    call('DEL', key)
    zadd_top(S, j, key, S.tn[j])
  end
  return record_top(S, j, L)
end

-- ---- the duplicate window ----

-- The 8-byte event key of a layout-1 member ('<id>' NUL '<counterpart>').
local function event_key(member)
  return (redis.sha1hex(member):sub(1, 16):gsub('%x%x', function(x)
    return string.char(tonum(x, 16))
  end))
end

-- The window's field for the side's HSET (h, nh pairs so far): the new
-- '#w' or '#z'. Returns the new nh. The write in 'ids' (S.spill, or S.pos
-- in the ring) is made by remember_ids.
local function window(S, h, nh)
  if S.z then
    -- the ring: appended while not full, else the oldest overwritten (at
    -- '#z'; a '#z' past a window made smaller since restarts at 0)
    local pos
    if S.idlen < DEDUP_IDS * 8 then
      pos = math.floor(S.idlen / 8)
      S.append = true
    else
      pos = tonum(S.z) or 0
      if pos >= DEDUP_IDS or pos < 0 then pos = 0 end
      S.append = false
    end
    S.pos = pos
    h[nh + 1], h[nh + 2] = '#z', dec((pos + 1) % DEDUP_IDS)
  else
    local w = S.w or ''
    if #w < 56 then
      h[nh + 1], h[nh + 2] = '#w', w .. S.key
    elseif DEDUP_IDS <= 7 then
      h[nh + 1], h[nh + 2] = '#w', w:sub(9) .. S.key
    else
      S.spill = true
      h[nh + 1], h[nh + 2] = '#z', sformat('%d', 8 % DEDUP_IDS)
    end
  end
  return nh + 2
end

-- The window's write in 'ids', after the side's HSET (a call stopped by an
-- error before it is made again in full): the spill (SET: the 7 keys of
-- '#w' then the new one), or the new key appended or written over the
-- oldest (SETRANGE). One call.
local function remember_ids(S)
  if S.spill then
    call('SET', S.k_ids, S.w .. S.key)
  elseif S.z then
    if S.append then
      call('APPEND', S.k_ids, S.key)
    else
      call('SETRANGE', S.k_ids, sformat('%d', S.pos * 8), S.key)
    end
  end
end

-- ---- migration ----

-- A layout-1 edge value (JSON) into weights, as weights_of does.
local function weights_of_json(C, raw, out)
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

-- The conversion of one side to layout 2, atomic (in the call): edges to
-- packed values, records ('!' fields) to out, statistics of 0 and '#last'
-- removed, layout 1's seen to the window, tops dropped (count <= L) or cut
-- to their first 2L, a rebuild under way cancelled, an edgeless hash given
-- its expiry. The hash is written whole (DEL, then HSET of its layout-2
-- fields), so that Redis encodes it afresh (a hash once in hashtable
-- encoding never returns to a listpack). seen's members, oldest first, to
-- event keys: at most 7 (or engine.dedup_ids <= 7: the newest 7) in '#w',
-- else the newest min(n, dedup_ids) in ids (oldest first) with '#z' the
-- next position of the ring; seen's lifetime carried to ids only when the
-- side has no edge. Top j's key is keys[t0 + j]. Returns 1 when something
-- was converted, else 0.
local function convert(C, k_side, k_ids, k_out, k_seen, keys, t0)
  local all = call('HGETALL', k_side)
  local set, out, w = {}, {}, {}
  local count, window_, rb, changed = 0, false, false, false
  for j = 1, #all, 2 do
    local f, v = all[j], all[j + 1]
    local c = sbyte(f, 1)
    if c == 64 then -- '@'
      count = count + 1
      if sbyte(v, 1) == 123 then -- '{'
        local wts, ver = weights_of_json(C, v, w)
        v, changed = pack(C, wts, ver), true
      end
      set[#set + 1], set[#set + 2] = f, v
    elseif c == 33 then -- '!'
      out[#out + 1], out[#out + 2] = event_key(f:sub(2)), v
      changed = true
    elseif f == '#last' then
      changed = true
    elseif f == '#rebuild' then
      rb, changed = f, true
    elseif c ~= 35 and v == '0' then -- a statistic of 0
      changed = true
    else
      if f == '#w' or f == '#z' then window_ = true end
      set[#set + 1], set[#set + 2] = f, v
    end
  end
  local ids, pttl, dseen = false, 0, false
  if not window_ and k_seen then
    local seen = call('ZRANGE', k_seen, '0', '-1')
    local n = #seen
    if n > 0 then
      changed, dseen = true, true
      pttl = call('PTTL', k_seen)
      local keys8 = {}
      if n <= 7 or DEDUP_IDS <= 7 then
        for j = math.max(1, n - 6), n do keys8[#keys8 + 1] = event_key(seen[j]) end
        set[#set + 1], set[#set + 2] = '#w', table.concat(keys8)
      else
        for j = math.max(1, n - DEDUP_IDS + 1), n do keys8[#keys8 + 1] = event_key(seen[j]) end
        ids = table.concat(keys8)
        set[#set + 1], set[#set + 2] = '#z', sformat('%d', n < DEDUP_IDS and n or 0)
      end
    end
  end
  if not changed then return 0 end
  chunked('HSET', k_out, out)
  call('DEL', k_side)
  chunked('HSET', k_side, set)
  if count == 0 then call('PEXPIRE', k_side, TTL_MS) end
  if ids then
    call('SET', k_ids, ids)
    if count == 0 and pttl > 0 then call('PEXPIRE', k_ids, pttl) end
  end
  if dseen then call('DEL', k_seen) end
  local base = k_side:sub(1, -5) -- 'P{R:S:X}:'
  if rb then call('UNLINK', base .. 'rebuild') end
  for j, i in ipairs(C.tops) do
    local key, L = keys[t0 + j], C.L[i]
    if rb then call('UNLINK', base .. 'rebuild:top:' .. C.short[i]) end
    if count <= L then
      call('DEL', key)
    else
      cut(C, i, key)
    end
  end
  return 1
end

-- ---- apply ----

-- Phase 1 of a side: reads only (the dedup check, the edge, the statistics)
-- and every decision, so that a refusal, or a key of another type in the
-- way, stops the call before anything is written (a side to convert is
-- converted first: the conversion is a refusal's no-op too, an event
-- refused leaves the side converted). Sets S.status: 1 (to apply), 2
-- (duplicate, S.pending its undelivered record), 3 (stale). Returns a
-- refusal message, or nil. The side's keys are keys[o + 1 ..]: side, ids,
-- out, tomb, tops, [seen] (nk keys in all).
local FENCED = {}

local function prepare(C, S, keys, o, nk, epoch, now, cp, ev_key, op, version, args, first, twin)
  local n, typ = C.n, C.typ
  local k_side = keys[o + 1]
  S.k_side, S.k_ids, S.k_out, S.ktomb, S.cp, S.key = k_side, keys[o + 2], keys[o + 3], o + 4, cp,
    ev_key
  S.spill, S.append, S.pos, S.idlen = false, false, 0, 0

  -- The edge as stored, the window and the statistics before, in one read.
  local get, ie, iw = S.get, S.ie, S.iw
  get[ie] = '@' .. cp
  local before = call('HMGET', k_side, tunpack(get))
  local fence = before[ie + 1]
  if fence == epoch then return FENCED end
  local nt = #C.tops
  -- layout 1's seen: only when the call names it (the keyspace in layout 1)
  local k_seen = nk > 4 + nt and keys[o + nk] or false
  if before[ie + 3] or (k_seen and not before[iw] and not before[iw + 1] and
                        call('EXISTS', k_seen) == 1) then
    convert(C, k_side, S.k_ids, S.k_out, k_seen, keys, o + 4)
    before = call('HMGET', k_side, tunpack(get))
  end
  local raw, w, z = before[ie], before[iw], before[iw + 1]
  -- false without a rebuild; never nil: Lua 5.1 gives a key set to nil a
  -- slot all the same, and S, full, would be rehashed on every call
  S.rb = before[ie + 2]
  -- the statistics alone: the six fields after them (S.get) go, in one
  -- statement (a loop costs more)
  before[iw], before[iw + 1], before[ie], before[ie + 1], before[ie + 2], before[ie + 3] =
    nil, nil, nil, nil, nil, nil
  S.unfence = fence and true
  S.before = before
  S.w, S.z = w, z

  -- A remembered event key is a duplicate: one of the 8-byte chunks of
  -- '#w', or of ids while the side has '#z' (a match at a chunk's start
  -- only; find: one C call in the usual case).
  if z then
    local ids = call('GET', S.k_ids) or ''
    S.idlen = #ids
    w = ids
  end
  if w then
    local at = sfind(w, ev_key, 1, true)
    while at and at % 8 ~= 1 do at = sfind(w, ev_key, at + 1, true) end
    if at then
      S.status = 2
      S.pending = call('HGET', S.k_out, ev_key)
      return nil
    end
  end

  -- The other side of this event, prepared first (apply2), with the same
  -- stored edge (or none): its old and new weights, kind and changes of the
  -- statistics follow from the edge and the event alone, and are taken
  -- from it; the tombstone, the version and the statistics' values are
  -- this side's own.
  local same = twin and twin.status == 1 and twin.raw == raw
  S.raw, S.twin, S.packed = raw, same and twin or false, false
  local old, oldver = false, nil
  if same then
    old, oldver = twin.wold, twin.oldver or nil
  elseif raw then
    old, oldver = weights_of(C, raw, S.old, S.oldt)
  end
  local edges = num(before[1] or '0') -- before this event
  S.edges = edges

  local tomb = nil
  if not old then tomb = call('GET', keys[o + 4]) or nil end
  local known = oldver or tomb
  if version ~= '' and known and vcmp(version, known) < 0 then
    S.status, S.kind = 3, false
    return nil
  end
  local newver = known
  if version ~= '' then newver = version end

  -- (newt: the text of a new value where known: the stored one's, an
  -- argument's (decimal integers); false for a sum)
  local new, newt, kind, fields, deltas, nf0
  if same then
    new, newt, kind = twin.wnew, twin.tnew, twin.kind or nil
    fields, deltas, nf0 = twin.fl, twin.dl, twin.nf0
  else
    new, newt, kind = false, S.newt, nil
    local oldt = S.oldt
    if op ~= 'd' then
      new = S.new
      for i = 1, n do
        new[i] = old and old[i]
        newt[i] = old and old[i] and oldt[i]
      end
      for j = first, #args, 2 do
        local i, a = IDX[args[j]], args[j + 1]
        if a == 'n' then
          new[i] = false
        else
          local v = NNUM[a] or a + 0
          if op == 's' and typ[i] ~= 2 then
            v = (new[i] or 0) + v
            if v > MAX or v < -MAX then
              return 'weights.' .. C.short[i] .. ': result of strengthen out of range'
            end
            a = v == 0 and '0' or false
          end
          new[i], newt[i] = v, a
        end
      end
    end

    if old and not new then kind = 3
    elseif new and not old then kind = 1
    elseif new then
      for i = 1, n do
        if old[i] ~= new[i] then kind = 2; break end
      end
    end

    -- what the edge's change adds to the statistics: fields[1..nf0] get
    -- deltas[1..nf0]
    fields, deltas, nf0 = S.fields, S.deltas, 0
    if kind then
      local dc = kind == 1 and 1 or kind == 3 and -1 or 0
      if dc ~= 0 then nf0 = 1; fields[1] = 'count'; deltas[1] = dc end
      for i = 1, n do
        local ov, nv = old and old[i], new and new[i]
        local t = typ[i]
        local d = ((nv and (t ~= 2 or nv == 1)) and 1 or 0) - ((ov and (t ~= 2 or ov == 1)) and 1 or 0)
        if d ~= 0 then nf0 = nf0 + 1; fields[nf0] = C.cf[i]; deltas[nf0] = d end
        if C.amount[i] then
          d = (nv or 0) - (ov or 0)
          if d ~= 0 then nf0 = nf0 + 1; fields[nf0] = C.tf[i]; deltas[nf0] = d end
        end
      end
    end
  end

  -- Statistics: computed here while every value is exact in a double
  -- (|v| < 2^53); exact int64 HINCRBYs beyond, up to LIMIT.
  local dc = kind == 1 and 1 or kind == 3 and -1 or 0
  local gone = dc == -1 and edges <= 1
  local vals, nf = S.vals, 0
  local exact = true
  if kind and not gone then
    nf = nf0
    local pos = C.pos
    for j = 1, nf do
      local b = before[pos[fields[j]]]
      local v = (b and (NNUM[b] or b + 0) or 0) + deltas[j]
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
  S.gone, S.nf, S.exact, S.dc = gone, nf, exact, dc
  S.tnew, S.fl, S.dl, S.nf0 = newt, fields, deltas, nf0
  return nil
end

-- A rebuild under way on the side (its '#rebuild' marker, read with the
-- statistics; see rebuild below): the edge as this call leaves it is counted
-- in the rebuild's copy, once, whether or not the rebuild's scan has passed
-- it. The copy's '@' field of the counterpart says what it counts of the
-- edge: absent nothing, '=' the edge as stored, 'x' nothing (detached), else
-- the edge's packed value as this call writes it (never '=' nor 'x'). Called before the side's
-- hash is written, so that the call made again after an error counts
-- nothing twice (the copy then counts the new value already). The copy's
-- keys share the side's hash tag (one slot), named from the side's key.
local function shadow(C, S, value)
  local base = S.k_side:sub(1, -5) -- 'P{R:S:X}:'
  local k_rb, cp = base .. 'rebuild', S.cp
  local got = call('HMGET', k_rb, '#epoch', '@' .. cp)
  if got[1] ~= S.rb then
    -- the rebuild stopped (its copy expired): its marker and top copies go
    call('HDEL', S.k_side, '#rebuild')
    for _, i in ipairs(C.tops) do call('UNLINK', base .. 'rebuild:top:' .. C.short[i]) end
    return
  end
  local acc, counted, new = {}, got[2], S.wnew
  if counted == '=' then
    if S.wold then contrib(C, S.wold, -1, acc, k_rb) end
  elseif counted and counted ~= 'x' then
    contrib(C, (weights_of(C, counted, S.acct)), -1, acc, k_rb)
  end
  if new then contrib(C, new, 1, acc, k_rb) end
  flush(acc, k_rb)
  for _, i in ipairs(C.tops) do
    local k, v = base .. 'rebuild:top:' .. C.short[i], new and new[i]
    if v then
      call('ZADD', k, sformat('%d', v), cp)
    else
      call('ZREM', k, cp)
    end
  end
  call('HSET', k_rb, '@' .. cp, new and value or 'x')
end

-- The side's hash written: h's nh pairs and the window (HSET), the fields
-- in S.del (nd of them, and '#w' on a spill: HDEL, first), then its
-- lifetime: an edgeless side expires, one that gets its first edge back is
-- made persistent. Then the window's write in ids, which lives as long as
-- the hash: it gets the same expiry, or is made persistent with it.
local function write_side(S, h, nh, nd)
  nh = window(S, h, nh)
  if S.spill then
    nd = nd + 1
    S.del[nd] = '#w'
  end
  if nd > 0 then call('HDEL', S.k_side, tunpack(S.del, 1, nd)) end
  call('HSET', S.k_side, tunpack(h, 1, nh))
  local edgeless, persist = S.edges + (S.dc or 0) == 0, false
  if edgeless then
    call('PEXPIRE', S.k_side, TTL_MS)
  elseif S.kind == 1 and S.edges == 0 and (S.w or S.z or S.unfence or S.rb) then
    call('PERSIST', S.k_side)
    persist = true
  end
  remember_ids(S)
  if edgeless and (S.z or S.spill) then
    call('PEXPIRE', S.k_ids, TTL_MS)
  elseif persist and S.z then
    call('PERSIST', S.k_ids)
  end
end

-- Phase 2 of a side prepared with status 1: the writes. Returns the side's
-- status 1 and its record (none without a change): two values, not a table
-- (one table less per side).
local function commit(C, S, keys, date, version)
  local n = C.n
  local k_side, cp, get = S.k_side, S.cp, S.get
  local old, new, kind, tomb = S.wold, S.wnew, S.kind, S.tomb
  local oldver, newver = S.oldver, S.newver
  local fields, deltas, vals, nf, before = S.fl, S.dl, S.vals, S.nf, S.before

  -- The tops first: a key of another type there (foreign data) stops the
  -- call before the side's hash changes (the call is made again once it is
  -- removed; these writes are idempotent).
  local tops, edges = S.tops, false
  if kind and S.edges - (old and 1 or 0) == 0 then
    -- no edge but this call's (a limit is at least 1: no top key before
    -- nor after): each top is this edge alone, or empty (what scan_edges
    -- and top_change give, without their loops)
    for j = 1, #C.tops do
      local i, t = C.tops[j], S.rt[j]
      local v, k = new and new[i], 0
      if v then
        t[1], t[2] = cp, S.tnew[i] or dec(v)
        k = 2
      end
      for q = #t, k + 1, -1 do t[q] = nil end
      tops[j] = t
    end
  elseif kind then
    local cb = S.edges
    local ca = cb + S.dc
    for j = 1, #C.tops do local i = C.tops[j]
      if cb <= C.L[i] and ca > C.L[i] then scan_edges(C, S); break end
    end
    for j = 1, #C.tops do local i = C.tops[j]
      if ca <= C.L[i] then
        -- the top is all the side's edges with the property: the record
        -- carries the edges (read once), the daemon orders them
        if cb > C.L[i] then call('DEL', keys[S.ktomb + j]) end
        if not edges then edges = side_edges(S) end
        tops[j] = false
      else
        local ov, nv = old and old[i], new and new[i]
        local pcb = num(before[C.pos[C.cf[i]]] or '0')
        local pca = pcb + (nv and 1 or 0) - (ov and 1 or 0)
        tops[j] = top_change(C, S, j, i, keys[S.ktomb + j], cb, ca, pcb, pca)
      end
    end
  end

  -- The side's hash is written by one HSET: the edge, the statistics, the
  -- window; h collects its field/value pairs, S.del the fields to remove.
  local h, nh, del, nd = S.h, 0, S.del, 0
  local value = ''
  if new then
    if kind or oldver ~= newver then
      -- the same edge written by the other side of the event: its value
      -- again when the version is the same (the tombstones may differ)
      local tw = S.twin
      if tw and tw.packed and tw.newver == newver then
        value = tw.packed
      else
        value = pack(C, new, newver, S.tnew)
      end
      S.packed = value
      h[1], h[2] = get[S.ie], value
      nh = 2
    end
    if tomb then call('DEL', keys[S.ktomb]) end
  else
    if newver and (old or version ~= '') then
      call('SET', keys[S.ktomb], newver, 'EX', TOMB_TTL)
    end
  end
  if S.rb and kind then shadow(C, S, value) end

  if not kind then
    write_side(S, h, nh, 0)
    return 1
  end

  if kind == 3 then
    -- the edge goes, and with the last edge the statistics
    if S.gone then
      for j = 1, #C.hm do del[j] = C.hm[j] end
      nd = #C.hm
    end
    nd = nd + 1
    del[nd] = get[S.ie]
  end
  if S.exact then
    for j = 1, nf do
      local v = vals[j]
      if v == 0 then
        nd = nd + 1
        del[nd] = fields[j]
      else
        h[nh + 1], h[nh + 2] = fields[j], NSTR[v] or sformat('%d', v)
        nh = nh + 2
      end
    end
  else
    for j = 1, nf do
      if call('HINCRBY', k_side, fields[j], sformat('%d', deltas[j])) == 0 then
        nd = nd + 1
        del[nd] = fields[j]
      end
    end
  end

  local rec = S.rec
  rec[1], rec[2], rec[3], rec[4], rec[5], rec[7] = date, kind, before, old, new, edges or nil
  local record = cpack(rec)
  call('HSET', S.k_out, S.key, record)
  write_side(S, h, nh, nd)
  return 1, record
end

-- A prepared side's status and record (or false/nil): 1[, record],
-- 2[, record] or 3.
local function finish(C, S, keys, date, version)
  if S.unfence then call('HDEL', S.k_side, '#fence') end
  if S.status == 1 then return commit(C, S, keys, date, version) end
  if S.status == 2 then return 2, S.pending end
  -- stale: only remembered
  S.dc = 0
  write_side(S, S.h, 0, 0)
  return 3
end

-- One side. KEYS: side, ids, out, tomb, tops, [seen]; ARGV: relation index,
-- epoch, now, date, counterpart, event key, op, version, then pairs.
local function fenced(k)
  return redis.error_reply('FENCED ' .. k .. ': an earlier event of this side failed; ' ..
                           'sent again in order')
end

local function apply1(keys, args)
  local C = REL[IDX[args[1]]]
  local S = C.s[1]
  local version = args[8]
  local why = prepare(C, S, keys, 0, #keys, args[2], args[3], args[5], args[6], args[7], version,
                      args, 9)
  if why == FENCED then return fenced(keys[1]) end
  if why then return redis.error_reply('INVALID ' .. why) end
  local st, record = finish(C, S, keys, args[4], version)
  if record then return {st, record} end
  return {st}
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
  if not call then bind() end
  local ok, r = pcall(apply1, keys, args)
  if ok then return r end
  return failed(r, args[2], keys[1])
end

-- Both sides of the event, atomically: both are prepared (every refusal
-- decided, nothing written but a conversion), then both written, or
-- neither when either refuses. KEYS: the direct side's keys, then the
-- reverse side's; ARGV: relation index, epoch, now, date, profile a,
-- profile b, direct event key, reverse event key, op, version, then pairs.
-- Returns {status, record or '', status, record or ''}.
local function apply2_(keys, args)
  local C = REL[IDX[args[1]]]
  local D, R = C.s[1], C.s[2]
  local half = #keys / 2
  local epoch, now, op, version = args[2], args[3], args[9], args[10]
  -- A side fenced stops the event on both sides: its other side is fenced
  -- too, so that a later event of this epoch on that side does not go
  -- before it (it is sent again, in order, with the failed call).
  local why = prepare(C, D, keys, 0, half, epoch, now, args[6], args[7], op, version, args, 11)
  if why == FENCED then
    redis.pcall('HSET', keys[half + 1], '#fence', epoch)
    return fenced(keys[1])
  end
  if not why then
    why = prepare(C, R, keys, half, half, epoch, now, args[5], args[8], op, version, args, 11, D)
    if why == FENCED then
      redis.pcall('HSET', keys[1], '#fence', epoch)
      return fenced(keys[half + 1])
    end
  end
  if why then return redis.error_reply('INVALID ' .. why) end
  local d, drec = finish(C, D, keys, args[4], version)
  local r, rrec = finish(C, R, keys, args[4], version)
  return {d, drec or '', r, rrec or ''}
end

local function apply2(keys, args)
  if not call then bind() end
  local ok, r = pcall(apply2_, keys, args)
  if ok then return r end
  return failed(r, args[2], keys[1], keys[#keys / 2 + 1])
end

-- migrate: the conversion of one side (relationctl migrate). KEYS: side,
-- ids, out, seen (layout 1), then one top key per property with a top;
-- ARGV: relation index. Returns 1 (converted) or 0 (nothing to convert).
local function migrate(keys, args)
  if not call then bind() end
  return convert(REL[IDX[args[1]]], keys[1], keys[2], keys[3], keys[4], keys, 4)
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
  if not call then bind() end
  local C = REL[IDX[args[1]]]
  local token, cursor = args[2], args[3]
  local k_side, k_rb, nt = keys[1], keys[2], #C.tops
  if cursor == '0' then
    -- a rebuild of this side under way or stopped is superseded
    call('UNLINK', k_rb, tunpack(keys, 3 + nt, 2 + 2 * nt))
  elseif call('HGET', k_side, '#rebuild') ~= token or
         call('HGET', k_rb, '#epoch') ~= token then
    if call('HGET', k_rb, '#epoch') == false then
      call('HDEL', k_side, '#rebuild')
      call('UNLINK', k_rb, tunpack(keys, 3 + nt, 2 + 2 * nt))
    end
    return redis.error_reply('REBUILD ' .. k_side .. ': stopped, another rebuild of the ' ..
                             'side started or this one paused over ' .. REBUILD_TTL .. ' ms')
  end
  local page = call('HSCAN', k_side, cursor, 'MATCH', '@*', 'COUNT', args[4])
  local nxt, f = page[1], page[2]
  local whole = cursor == '0' and nxt == '0'
  if cursor == '0' and not whole then
    call('HSET', k_rb, '#epoch', token)
    call('HSET', k_side, '#rebuild', token)
  end
  if not whole then call('PEXPIRE', k_rb, REBUILD_TTL) end

  -- the edges of the page the copy does not count yet
  local known = {}
  if not whole and #f > 0 then
    local names = {}
    for j = 1, #f, 2 do names[#names + 1] = f[j] end
    known = call('HMGET', k_rb, tunpack(names))
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
          tv[#tv + 1], tv[#tv + 2] = sformat('%d', w[i]), cp
        end
      end
      marks[#marks + 1], marks[#marks + 2] = f[j], '='
    end
  end
  flush(acc, k_rb)
  if not whole and #marks > 0 then call('HSET', k_rb, tunpack(marks)) end
  for t = 1, nt do
    local tv = topv[t]
    chunked('ZADD', keys[2 + nt + t], tv)
    if not whole then call('PEXPIRE', keys[2 + nt + t], REBUILD_TOP_TTL) end
  end
  if nxt ~= '0' then return {nxt, count} end

  -- the swap: the statistics (every field of the layout, or none with no
  -- edge), the tops (the old ones freed in the background), the copy gone
  local vals = call('HMGET', k_rb, tunpack(C.hm))
  call('HDEL', k_side, '#rebuild', tunpack(C.hm))
  if vals[1] and vals[1] ~= '0' then
    local h = {}
    for j = 1, #C.hm do
      if vals[j] and vals[j] ~= '0' then h[#h + 1], h[#h + 2] = C.hm[j], vals[j] end
    end
    call('HSET', k_side, tunpack(h))
  end
  -- a top is kept only while the side has more than L edges, cut to the
  -- first 2L of its order
  local edges = (vals[1] or '0') + 0
  for t, i in ipairs(C.tops) do
    local L, key, copy = C.L[i], keys[2 + t], keys[2 + nt + t]
    call('UNLINK', key)
    if edges <= L then
      call('UNLINK', copy)
    elseif call('EXISTS', copy) == 1 then
      call('RENAME', copy, key)
      call('PERSIST', key)
      cut(C, i, key)
    end
  end
  call('UNLINK', k_rb)
  return {'0', count}
end
