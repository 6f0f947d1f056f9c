-- Sorts 300,000 pseudo-random numbers with a hand-written quicksort.
local function sort(a, lo, hi)
  while lo < hi do
    local pivot = a[(lo + hi) // 2]
    local i, j = lo, hi
    while i <= j do
      while a[i] < pivot do i = i + 1 end
      while a[j] > pivot do j = j - 1 end
      if i <= j then
        a[i], a[j] = a[j], a[i]
        i = i + 1
        j = j - 1
      end
    end
    -- Recurse into the smaller part, loop on the larger one.
    if j - lo < hi - i then
      sort(a, lo, j)
      lo = i
    else
      sort(a, i, hi)
      hi = j
    end
  end
end

local a = {}
local x = 12345
for i = 0, 299999 do
  x = (x * 1103515245 + 12345) % 2147483648
  a[i] = x
end
sort(a, 0, 299999)
print(a[0] .. " " .. a[299999])
