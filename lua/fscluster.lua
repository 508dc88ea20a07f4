--[[
fscluster hooks for fs_cli (FreeSWITCH mod_lua): the cluster at hand without leaving the console.

  lua fscluster.lua status          every node: role, VIPs, registrations, channels, last failover
  lua fscluster.lua flush           bump the cache generation (every node re-reads the DB)
  lua fscluster.lua takeover VIP    run the takeover of a VIP this node holds now
  lua fscluster.lua release VIP     stop serving VIP here (keepalived moves it away)
  lua fscluster.lua failback VIP    hand VIP back to its preferred master

Each runs the `fscluster` CLI (path: global variable `fscluster_cli`, default
/usr/local/bin/fscluster) and writes its output to the console stream; `lua` runs the script
synchronously and `stream:write` is how its output reaches fs_cli. Arguments are checked
against a strict pattern before anything reaches a shell. Install: copy to FreeSWITCH's
scripts directory (`lua` resolves relative names there).
]]

local USAGE = "usage: lua fscluster.lua status|flush|takeover VIP|release VIP|failback VIP\n"
local WITH_VIP = { takeover = true, release = true, failback = true }

local function out(text)
  if stream ~= nil then
    stream:write(text)
  else                                   -- luarun: no stream, the log is all there is
    freeswitch.consoleLog("info", text)
  end
end

local function cli_path()
  local path = freeswitch.getGlobalVariable("fscluster_cli")
  if path == nil or path == "" then
    path = "/usr/local/bin/fscluster"
  end
  if not path:match("^/[%w%._/%-]+$") then
    return nil
  end
  return path
end

local function run(args)
  local path = cli_path()
  if path == nil then
    return false, "-ERR global fscluster_cli is not an absolute path\n"
  end
  -- 2>&1: the CLI reports errors on stderr as one line; the operator should see it here.
  local handle = io.popen(path .. " " .. table.concat(args, " ") .. " 2>&1")
  if handle == nil then
    return false, "-ERR cannot run " .. path .. "\n"
  end
  local text = handle:read("*a") or ""
  local ok = handle:close()
  return ok, text
end

local command = argv[1]
local args
if command == "status" then
  args = { "status" }
elseif command == "flush" then
  args = { "cache", "flush" }
elseif WITH_VIP[command] then
  local vip = argv[2]
  if vip == nil or not vip:match("^[%w_%-]+$") then
    out(USAGE)
    return
  end
  args = { command, vip }
else
  out(USAGE)
  return
end

local ok, text = run(args)
if text ~= "" and text:sub(-1) ~= "\n" then
  text = text .. "\n"
end
out(text)
if ok then
  freeswitch.consoleLog("info", "fscluster " .. table.concat(args, " ") .. ": done\n")
else
  freeswitch.consoleLog("err", "fscluster " .. table.concat(args, " ") .. ": failed\n")
end
