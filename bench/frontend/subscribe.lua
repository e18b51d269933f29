-- wrk script for bench/frontend: every request subscribes a new address
-- (Confirm=0), and every answer is checked to be the bare code 0.
local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    counter = 0
    ok = 0
    bad = 0
    local confirm = args[1] or "0"
    -- The request around its counter, built once: wrk shares the two cores
    -- with the server, and building each request with wrk.format put wrk's
    -- CPU per request at 1.6-1.9 times its /healthz figure (1.2-1.5 now).
    local example = wrk.format("GET", "/frontend/xmlSubscribe.aspx?List=1&Confirm=" .. confirm ..
        "&csvFldNames=campo1&csvFldValues=Bench&Email=t" .. id .. "n#%40bench.example")
    before, after = example:match("^(.-)#(.*)$")
end

function request()
    counter = counter + 1
    return before .. counter .. after
end

function response(status, headers, body)
    if status == 200 and body == "0" then
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
