-- The image's traffic mode: CONCURRENCY loops per worker send GET requests to a URL one after
-- another (a new connection each, like many clients), and worker 0 prints a summary every 5 s.
return function(url, concurrency)
  local host, port, path = url:match("^http://([^:/]+):?(%d*)(.*)$")
  port = tonumber(port) or 80
  if path == "" then path = "/" end
  local request = "GET " .. path .. " HTTP/1.1\r\nHost: " .. host .. "\r\nUser-Agent: autoscale-traffic\r\nConnection: close\r\n\r\n"
  local counts = {}

  local function client(premature)
    if premature then return end
    while not ngx.worker.exiting() do
      local sock = ngx.socket.tcp()
      sock:settimeout(5000)
      local ok = sock:connect(host, port)
      local status = "error"
      if ok and sock:send(request) then
        local line = sock:receive("*l")
        status = line and line:match("^HTTP/%d%.%d (%d+)") or "error"
        sock:receive("*a")
      end
      sock:close()
      counts[status] = (counts[status] or 0) + 1
      if status == "error" then ngx.sleep(0.5) end
    end
  end

  local function report(premature)
    if premature then return end
    local parts, total = {}, 0
    for status, n in pairs(counts) do
      parts[#parts + 1] = status .. "=" .. n
      total = total + n
    end
    table.sort(parts)
    io.stdout:write("traffic: ", total, " requests in the last 5 s (", table.concat(parts, " "), ")\n")
    io.stdout:flush()
    counts = {}
  end

  for _ = 1, concurrency do ngx.timer.at(0, client) end
  if ngx.worker.id() == 0 then ngx.timer.every(5, report) end
end
