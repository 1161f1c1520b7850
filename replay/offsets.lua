-- Offsets are compared as canonical decimal strings (no sign, no leading zeros), which is
-- exact for all 64-bit offsets; Lua numbers are doubles and would round above 2^53.
-- Included by the scripts that compare offsets (see scripts.lua_source).
local function offset_greater(a, b)
  if #a ~= #b then
    return #a > #b
  end
  return a > b
end
