-- Test helpers for the balancer specs (not a spec itself): a seeded generator, so every run
-- draws the same numbers on any machine, and peer list builders.
local M = {}

-- Park-Miller minimal standard generator: exact in doubles, the same on every Lua.
function M.rng(seed)
  local state = seed % 2147483647
  if state <= 0 then state = state + 2147483646 end
  return function()
    state = (state * 48271) % 2147483647
    return (state - 1) / 2147483646
  end
end

function M.peers(...)
  local list = {}
  for i, w in ipairs({ ... }) do
    list[i] = { host = "10.0.0." .. i, port = 80, weight = w }
  end
  return list
end

function M.counts(algo, state, n, random, now)
  local counts = {}
  for _ = 1, n do
    local p = algo.pick(state, now or 0, random)
    counts[p.host] = (counts[p.host] or 0) + 1
    algo.after(state, p, now or 0, 0.01, false)
  end
  return counts
end

-- A closed loop with `concurrency` requests in flight, completed oldest first: the shares of
-- load-aware algorithms then reflect their in-flight balancing, as under real traffic.
function M.closed_loop(algo, state, n, random, now, concurrency)
  local counts, queue, head = {}, {}, 1
  for i = 1, n do
    local p = algo.pick(state, now, random)
    counts[p.host] = (counts[p.host] or 0) + 1
    queue[i] = p
    if i - head + 1 > concurrency then
      algo.after(state, queue[head], now, 0.01, false)
      head = head + 1
    end
  end
  for i = head, n do algo.after(state, queue[i], now, 0.01, false) end
  return counts
end

return M
