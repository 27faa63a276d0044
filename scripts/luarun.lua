-- Runs a compiled module's main(args) under LuaJIT, outside nginx:
--   luajit scripts/luarun.lua resty.autoscale.tools.validate FILE
-- The module's main returns the process exit code.
local root = arg[0]:match("^(.*)/scripts/[^/]+$") or "."
package.path = root .. "/build/lua/?.lua;" .. root .. "/build/lua/?/init.lua;" .. package.path
local args = {}
for i = 2, #arg do args[#args + 1] = arg[i] end
local module = require(arg[1])
os.exit(module.main(args) or 0)
