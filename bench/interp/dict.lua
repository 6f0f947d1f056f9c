-- Fills a table with 200,000 string keys, then reads every one back.
local d = {}
for i = 0, 199999 do
  d["k" .. i] = i
end
local sum = 0
for i = 0, 199999 do
  sum = sum + d["k" .. i]
end
print(sum)
