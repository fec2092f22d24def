-- bench/lib/etcd_put.lua — wrk script: one etcd v3 put per request through the JSON
-- gateway (POST /v3/kv/put, key and value base64), a 64-byte value like the other
-- systems' commands.  The request is static (wrk builds it once), which is the
-- cheapest client wrk allows.  done() dumps the latency histogram ("µs count" per
-- line) to $WRK_HIST_OUT so several wrk processes' percentiles can be merged exactly,
-- and the counters to $WRK_SUMMARY_OUT.

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local q = {}
        for j = 3, 0, -1 do
            local idx = math.floor(n / 64 ^ j) % 64
            q[#q + 1] = b64chars:sub(idx + 1, idx + 1)
        end
        if not b then q[3] = "=" end
        if not c then q[4] = "=" end
        out[#out + 1] = table.concat(q)
    end
    return table.concat(out)
end

local value = os.getenv("PAYLOAD") or string.rep("x", 64)
wrk.method = "POST"
wrk.path = "/v3/kv/put"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key":"' .. b64("bench/key") .. '","value":"' .. b64(value) .. '"}'

function done(summary, latency, requests)
    local h = io.open(os.getenv("WRK_HIST_OUT"), "w")
    for i = 1, #latency do
        local us, count = latency(i)
        h:write(string.format("%d %d\n", us, count))
    end
    h:close()
    local e = summary.errors
    local s = io.open(os.getenv("WRK_SUMMARY_OUT"), "w")
    s:write(string.format("%d %d %d\n", summary.requests, summary.duration,
        e.connect + e.read + e.write + e.status + e.timeout))
    s:close()
end
