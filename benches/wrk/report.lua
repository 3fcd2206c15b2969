-- Shared done(): one machine-readable line for run.sh's table.
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d rps=%.0f p50=%.2f p99=%.2f p999=%.2f max=%.2f non2xx=%d errors=%d\n",
    summary.requests, summary.requests / s,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    summary.errors.status, errors))
end
