-- apply.lua: one side of one edge, atomically (README, "Redis key layout").
--
-- ARGV[1]  mode: "apply" or "stats"
-- ARGV[2]  N, the number of properties, then 5 values per property:
--          short, type (int|float|bool), save_amount (0|1), top order (""|desc|asc), limit
-- KEYS     stats, edges, one top key per property with a top (in property order),
--          then (apply only) seen, outbox, tomb
--
-- apply, after the properties:
--   now_ms, event_date, tombstone_ttl_s, dedup_ids,
--   side, relation, own profile, own database, counterpart, counterpart database,
--   event id, op, occurred_at ("" = none), version ("" = none), is_test (0|1),
--   N weight arguments ("" absent, "null", or an integer: fixed-point for float),
--   M, then 4 values per threshold of this side: stat, property index (0 = none),
--   value (integer, in the watched value's units), index in the configuration
-- Returns {status, body...} with status applied|duplicate|stale, or an error.
--
-- Numbers are integers here: float values in millionths. Redis stores them
-- as decimal text in natural units.

local SCALE = 1000000
local FLOAT_MAX = 1000000000 * SCALE
local INT_MAX = 1000000000000000

local mode = ARGV[1]
local nprops = tonumber(ARGV[2])
local props = {}
local a = 3
local ntop = 0
for i = 1, nprops do
  local p = {short = ARGV[a], type = ARGV[a + 1], amount = ARGV[a + 2] == '1',
             order = ARGV[a + 3], limit = tonumber(ARGV[a + 4])}
  if p.order ~= '' then
    ntop = ntop + 1
    p.topkey = KEYS[2 + ntop]
  end
  props[i] = p
  a = a + 5
end
local K_STATS, K_EDGES = KEYS[1], KEYS[2]

local function fmt_int(n)
  return string.format('%d', n)
end

local function fmt_fixed(n)
  local neg = n < 0
  if neg then n = -n end
  local ip = math.floor(n / SCALE)
  local fp = n - ip * SCALE
  if fp < 0 then ip = ip - 1; fp = fp + SCALE end
  if fp >= SCALE then ip = ip + 1; fp = fp - SCALE end
  local s = fmt_int(ip)
  if fp ~= 0 then
    s = s .. '.' .. (string.format('%06d', fp):gsub('0+$', ''))
  end
  if neg then s = '-' .. s end
  return s
end

-- "700.5" -> 700500000 (exact: no floating-point parse)
local function parse_fixed(s)
  local neg = s:sub(1, 1) == '-'
  if neg then s = s:sub(2) end
  local ip, fp = s:match('^(%d+)%.?(%d*)$')
  local n = tonumber(ip) * SCALE + tonumber((fp .. '000000'):sub(1, 6))
  if neg then return -n end
  return n
end

-- A number of property p as JSON: float in natural units, int and bool as integers.
local function fmt_num(p, v)
  if p and p.type == 'float' then return fmt_fixed(v) end
  return fmt_int(v)
end

local function fmt_value(p, v)
  if p.type == 'bool' then return v == 1 and 'true' or 'false' end
  return fmt_num(p, v)
end

local function parse_num(p, s)
  if p.type == 'float' then return parse_fixed(s) end
  return tonumber(s)
end

local function read_stats()
  local flat = redis.call('HGETALL', K_STATS)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  local st = {count = tonumber(h['count'] or '0'), pcount = {}, ptotal = {}}
  for i, p in ipairs(props) do
    st.pcount[i] = tonumber(h[p.short .. ':count'] or '0')
    st.ptotal[i] = parse_num(p, h[p.short .. ':total'] or '0')
  end
  return st
end

local function top_json(p)
  local cmd = p.order == 'desc' and 'ZREVRANGE' or 'ZRANGE'
  local r = redis.call(cmd, p.topkey, 0, p.limit - 1, 'WITHSCORES')
  local out = {}
  for i = 1, #r, 2 do
    local score = tonumber(r[i + 1])
    local v
    if p.type == 'float' then
      if score < 0 then v = -math.floor(-score * SCALE + 0.5) else v = math.floor(score * SCALE + 0.5) end
    else
      v = score
    end
    out[#out + 1] = '{"profile_id":' .. cjson.encode(r[i]) .. ',"value":' .. fmt_num(p, v) .. '}'
  end
  return '[' .. table.concat(out, ',') .. ']'
end

local function stats_json(st)
  local parts = {}
  for i, p in ipairs(props) do
    local s = cjson.encode(p.short) .. ':{"count":' .. fmt_int(st.pcount[i])
    if p.amount then s = s .. ',"total":' .. fmt_num(p, st.ptotal[i]) end
    if p.order ~= '' then s = s .. ',"top":' .. top_json(p) end
    parts[#parts + 1] = s .. '}'
  end
  return '{"count":' .. fmt_int(st.count) .. ',"properties":{' .. table.concat(parts, ',') .. '}}'
end

if mode == 'stats' then
  return stats_json(read_stats())
end

-- ---- apply ----

local b = 3 + 5 * nprops
local now_ms, event_date = ARGV[b], ARGV[b + 1]
local tomb_ttl, dedup = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
local side, rel, own, own_db = ARGV[b + 4], ARGV[b + 5], ARGV[b + 6], ARGV[b + 7]
local cp, cp_db, ev_id, op = ARGV[b + 8], ARGV[b + 9], ARGV[b + 10], ARGV[b + 11]
local occurred, version, is_test = ARGV[b + 12], ARGV[b + 13], ARGV[b + 14] == '1'
b = b + 15
local wargs = {}
for i = 1, nprops do wargs[i] = ARGV[b + i - 1] end
b = b + nprops
local thresholds = {}
for i = 1, tonumber(ARGV[b]) do
  local o = b + 1 + (i - 1) * 4
  thresholds[i] = {stat = ARGV[o], prop = tonumber(ARGV[o + 1]), value = tonumber(ARGV[o + 2]),
                   index = ARGV[o + 3]}
end
local K_SEEN, K_OUTBOX, K_TOMB = KEYS[3 + ntop], KEYS[4 + ntop], KEYS[5 + ntop]

local function remember()
  -- scores increase strictly per side, so trimming drops the oldest ids
  local score = tonumber(now_ms)
  local last = redis.call('ZREVRANGE', K_SEEN, 0, 0, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
  redis.call('ZADD', K_SEEN, string.format('%d', score), ev_id)
  redis.call('EXPIRE', K_SEEN, tomb_ttl)
  redis.call('ZREMRANGEBYRANK', K_SEEN, 0, -dedup - 1)
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

if redis.call('ZSCORE', K_SEEN, ev_id) then
  local r = {'duplicate'}
  local pending = redis.call('HGET', K_OUTBOX, ev_id)
  if pending then
    for line in string.gmatch(pending, '[^\n]+') do r[#r + 1] = line end
  end
  return r
end

-- The edge as stored: {version = string|nil, w = {[i] = integer}}
local old = nil
local raw = redis.call('HGET', K_EDGES, cp)
if raw then
  local d = cjson.decode(raw)
  old = {w = {}}
  if type(d.version) == 'string' then old.version = d.version end
  for i, p in ipairs(props) do
    local v = d.weights[p.short]
    if v ~= nil then
      if p.type == 'bool' then
        old.w[i] = v and 1 or 0
      elseif p.type == 'float' then
        if v < 0 then old.w[i] = -math.floor(-v * SCALE + 0.5) else old.w[i] = math.floor(v * SCALE + 0.5) end
      else
        old.w[i] = v
      end
    end
  end
end

local tomb = nil
if not old then tomb = redis.call('GET', K_TOMB) or nil end
local known = (old and old.version) or tomb
if version ~= '' and known and vcmp(version, known) < 0 then
  remember()
  return {'stale'}
end
local newver = known
if version ~= '' then newver = version end

local new = nil
if op ~= 'detach' then
  new = {version = newver, w = {}}
  if old then for i, v in pairs(old.w) do new.w[i] = v end end
  for i, p in ipairs(props) do
    local arg = wargs[i]
    if arg == 'null' then
      new.w[i] = nil
    elseif arg ~= '' then
      local v = tonumber(arg)
      if op == 'strengthen' and p.type ~= 'bool' then
        v = (new.w[i] or 0) + v
        local max = p.type == 'float' and FLOAT_MAX or INT_MAX
        if v > max or v < -max then
          return redis.error_reply('weights.' .. p.short .. ': result of strengthen out of range')
        end
      end
      new.w[i] = v
    end
  end
end

local function same_weights(x, y)
  for i = 1, nprops do
    if x.w[i] ~= y.w[i] then return false end
  end
  return true
end

local function weights_json(e)
  if not e then return 'null' end
  local parts = {}
  for i, p in ipairs(props) do
    if e.w[i] ~= nil then
      parts[#parts + 1] = cjson.encode(p.short) .. ':' .. fmt_value(p, e.w[i])
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Stored state.
local kind = nil
if old and not new then kind = 'detach'
elseif new and not old then kind = 'attach'
elseif new and old and not same_weights(old, new) then kind = 'change' end

if new then
  if kind or old.version ~= new.version then
    local ver = new.version and cjson.encode(new.version) or 'null'
    redis.call('HSET', K_EDGES, cp, '{"version":' .. ver .. ',"weights":' .. weights_json(new) .. '}')
  end
  if tomb then redis.call('DEL', K_TOMB) end
else
  if old then redis.call('HDEL', K_EDGES, cp) end
  if newver and (old or version ~= '') then
    redis.call('SET', K_TOMB, newver, 'EX', tomb_ttl)
  end
end

if not kind then
  remember()
  return {'applied'}
end

local before = read_stats()
local after = {count = before.count, pcount = {}, ptotal = {}}
for i = 1, nprops do after.pcount[i], after.ptotal[i] = before.pcount[i], before.ptotal[i] end
if kind == 'attach' then after.count = after.count + 1 end
if kind == 'detach' then after.count = after.count - 1 end
for i, p in ipairs(props) do
  local ov, nv = old and old.w[i], new and new.w[i]
  local function counted(v) return v ~= nil and (p.type ~= 'bool' or v == 1) end
  after.pcount[i] = after.pcount[i] + (counted(nv) and 1 or 0) - (counted(ov) and 1 or 0)
  if p.amount then after.ptotal[i] = after.ptotal[i] + ((nv or 0) - (ov or 0)) end
  if p.topkey then
    if nv ~= nil then
      if nv ~= ov then redis.call('ZADD', p.topkey, fmt_num(p, nv), cp) end
    elseif ov ~= nil then
      redis.call('ZREM', p.topkey, cp)
    end
  end
end
if after.count == 0 then
  redis.call('DEL', K_STATS)
else
  local h = {'count', fmt_int(after.count)}
  for i, p in ipairs(props) do
    h[#h + 1] = p.short .. ':count'
    h[#h + 1] = fmt_int(after.pcount[i])
    if p.amount then
      h[#h + 1] = p.short .. ':total'
      h[#h + 1] = fmt_num(p, after.ptotal[i])
    end
  end
  redis.call('HSET', K_STATS, unpack(h))
end

-- Triggers.
local function uuid(kindname, index)
  local h = redis.sha1hex(ev_id .. '|' .. rel .. '|' .. side .. '|' .. kindname .. '|' .. index)
  local variant = ({'8', '9', 'a', 'b'})[tonumber(h:sub(17, 17), 16) % 4 + 1]
  return h:sub(1, 8) .. '-' .. h:sub(9, 12) .. '-5' .. h:sub(14, 16) .. '-' .. variant ..
         h:sub(18, 20) .. '-' .. h:sub(21, 32)
end

local head = '{"event_type":"relation_' .. side .. '_'
local common = '","event_date":' .. cjson.encode(event_date) .. ',"profile_id":' ..
  cjson.encode(own) .. ',"database":' .. cjson.encode(own_db) .. ',"is_test":' ..
  (is_test and 'true' or 'false') .. ',"event_data":{"id":"'
local tail = '","relation":' .. cjson.encode(rel) .. ',"direction":"' .. side ..
  '","counterpart":{"profile_id":' .. cjson.encode(cp) .. ',"database":' .. cjson.encode(cp_db) ..
  '},"source_event":{"id":' .. cjson.encode(ev_id) .. ',"op":"' .. op .. '","occurred_at":' ..
  (occurred ~= '' and cjson.encode(occurred) or 'null') .. '},"weights":{"before":' ..
  weights_json(old) .. ',"after":' .. weights_json(new) .. '},"stats":' .. stats_json(after) ..
  ',"threshold":'

local bodies = {}
local function emit(kindname, index, threshold)
  bodies[#bodies + 1] = head .. kindname .. common .. uuid(kindname, index) .. '","kind":"' ..
    kindname .. tail .. threshold .. '}}'
end

emit(kind, '', 'null')

local function watched(t, st, e)
  if t.stat == 'count' then
    if t.prop == 0 then return st.count end
    return st.pcount[t.prop]
  elseif t.stat == 'total' then
    return st.ptotal[t.prop]
  end
  return e and e.w[t.prop]
end

for _, t in ipairs(thresholds) do
  local x, y = watched(t, before, old), watched(t, after, new)
  local crossing = nil
  if (x == nil or x < t.value) and y ~= nil and y >= t.value then crossing = 'up' end
  if x ~= nil and x >= t.value and (y == nil or y < t.value) then crossing = 'down' end
  if crossing then
    local p = t.stat ~= 'count' and props[t.prop] or nil
    local function num(v) if v == nil then return 'null' end return fmt_num(p, v) end
    emit('threshold', t.index, '{"stat":"' .. t.stat .. '","property":' ..
      (t.prop > 0 and cjson.encode(props[t.prop].short) or 'null') .. ',"value":' ..
      num(t.value) .. ',"crossing":"' .. crossing .. '","before":' .. num(x) ..
      ',"after":' .. num(y) .. '}')
  end
end

redis.call('HSET', K_OUTBOX, ev_id, table.concat(bodies, '\n'))
remember()
local r = {'applied'}
for _, body in ipairs(bodies) do r[#r + 1] = body end
return r
