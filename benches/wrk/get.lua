-- GET by key over a list of ids (ids.txt, one per line), picked in turn per connection.
-- PATH_SUFFIX (e.g. "?$select=name") is appended to each request.
local ids = {}
for line in io.lines(os.getenv("IDS") or "ids.txt") do ids[#ids + 1] = line end
local token = os.getenv("TOKEN")
local suffix = os.getenv("PATH_SUFFIX") or ""
local base = os.getenv("BASE") or "/api/data/v9.2/accounts"
local i = 0

function setup(thread) thread:set("offset", math.random(#ids)) end

request = function()
  i = i + 1
  local id = ids[((i + (offset or 0)) % #ids) + 1]
  return wrk.format("GET", base .. "(" .. id .. ")" .. suffix, {
    ["Authorization"] = "Bearer " .. token,
    ["Accept"] = "application/json",
    ["OData-MaxVersion"] = "4.0",
    ["OData-Version"] = "4.0",
  })
end

dofile((os.getenv("WRK_DIR") or ".") .. "/report.lua")
