-- wrk script for bench/tracking: requests pixel and click paths read from the
-- file named by the first argument, round robin; counts answers that are a
-- pixel (200) or a redirect (302).
local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    paths = {}
    for line in io.lines(args[1]) do
        table.insert(paths, line)
    end
    index = id
    ok = 0
    bad = 0
end

function request()
    index = index % #paths + 1
    return wrk.format("GET", paths[index], { ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" })
end

function response(status, headers, body)
    if status == 200 or status == 302 then
        ok = ok + 1
    else
        bad = bad + 1
    end
end

function done(summary, latency, requests)
    local total_ok, total_bad = 0, 0
    for _, thread in ipairs(threads) do
        total_ok = total_ok + thread:get("ok")
        total_bad = total_bad + thread:get("bad")
    end
    io.write(string.format("ANSWERS ok=%d bad=%d\n", total_ok, total_bad))
end
