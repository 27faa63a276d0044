// Cluster-wide mode: the same two limiters as Lua scripts that run atomically inside Redis
// (EVAL / EVALSHA; Redis runs one script at a time, so a script's read-then-write cannot race).
// Time is Redis' own clock (TIME), so gateway instances with skewed clocks share one timeline.
// Redis >= 3.2 is needed (scripts that write after TIME replicate their effects; Redis 7 always
// does). Both return {admitted (1 or 0), remaining, milliseconds}: for an admission the
// milliseconds until the quota is back (RateLimit-Reset), for a refusal until it would pass
// (Retry-After). A refusal consumes nothing, so dry-run is the caller ignoring a 0.
//
// In Redis Cluster, give the key a hash tag ("{route:alice}") so a window's two keys, derived
// from KEYS[1] inside the script, live on one node.

/**
 * Token bucket (GCRA). KEYS[1] = bucket key. ARGV: [1] milliseconds per token (1000 / rate),
 * [2] tolerance in milliseconds (burst x ms per token), [3] cost in tokens.
 */
export const TOKEN_BUCKET_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new = tat + cost * interval
local ahead = new - now
if ahead > tolerance + 0.001 then
  return {0, 0, math.ceil(ahead - tolerance)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new), 'PX', math.max(1, math.ceil(ahead)))
return {1, math.floor((tolerance - ahead + 0.001) / interval), math.ceil(ahead)}
`;

/**
 * Sliding-window counter. KEYS[1] = key prefix (the script adds ":<window index>").
 * ARGV: [1] limit per window, [2] window in milliseconds, [3] cost.
 */
export const SLIDING_WINDOW_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local idx = math.floor(now / w)
local elapsed = now - idx * w
local curKey = KEYS[1] .. ':' .. string.format('%d', idx)
local previous = tonumber(redis.call('GET', KEYS[1] .. ':' .. string.format('%d', idx - 1))) or 0
local current = tonumber(redis.call('GET', curKey)) or 0
local estimate = previous * (1 - elapsed / w) + current + cost
if estimate > limit + 1e-9 then
  local wait
  if cost > limit then
    wait = w
  elseif current + cost <= limit then
    wait = previous > 0 and math.max(0, w * (1 - (limit - current - cost) / previous) - elapsed) or 0
  else
    local at = current > 0 and w * (1 - (limit - cost) / current) or 0
    wait = w - elapsed + math.max(0, at)
  end
  return {0, 0, math.ceil(wait)}
end
redis.call('INCRBY', curKey, cost)
redis.call('PEXPIRE', curKey, 2 * w)
return {1, math.floor(limit - estimate + 1e-9), math.ceil(w - elapsed)}
`;
