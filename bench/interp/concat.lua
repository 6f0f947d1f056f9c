-- Builds a 100,000-character string one character at a time.
local s = ""
for i = 1, 100000 do
  s = s .. "x"
end
print(#s)
