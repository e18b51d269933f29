-- wrk script for bench/tracking: requests the pixel and click paths read from
-- the file named by the first argument, round robin. The requests are built
-- once, and answers are not handed to Lua: on this 2-core machine wrk shares
-- the CPU with the server, and wrk's own count of requests and of answers
-- other than 2xx/3xx is all the benchmark needs.
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
end

function init(args)
    requests = {}
    for line in io.lines(args[1]) do
        table.insert(requests, wrk.format("GET", line, { ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" }))
    end
    index = id
end

function request()
    index = index % #requests + 1
    return requests[index]
end
