-- POST accounts with a name and an account number unique to the run.
local token = os.getenv("TOKEN")
local run = os.getenv("RUN") or tostring(os.time())
local base = os.getenv("BASE") or "/api/data/v9.2/accounts"
local n = 0

request = function()
  n = n + 1
  local body = '{"name":"wrk ' .. run .. ' ' .. n .. '","accountnumber":"W' .. run .. '-' .. n .. '"}'
  return wrk.format("POST", base, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json",
    ["OData-MaxVersion"] = "4.0",
    ["OData-Version"] = "4.0",
  }, body)
end

dofile((os.getenv("WRK_DIR") or ".") .. "/report.lua")
