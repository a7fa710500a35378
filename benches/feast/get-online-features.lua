-- wrk: POST /get-online-features, 3 features of one random driver of the
-- 10k that the benchmarks materialize (ids 1001..11000). Used by bench/run
-- and by `scripts/bench serve`.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(7)
request = function()
  local id = 1001 + math.random(0, 9999)
  local body = '{"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"], "entities": {"driver_id": [' .. id .. ']}}'
  return wrk.format(nil, nil, nil, body)
end
response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("HTTP " .. status .. ": " .. body .. "\n")
  end
end
