# scripts/bench-report.awk: the report of scripts/bench.
#
# Input (the data file): one measurement per line, tab-separated:
#   FIGURE METRIC SETUP RUN VALUE
# SETUP is direct, socat, wsmux or haproxy (wsmux through HAProxy, figures
# 1-4 only; its "hop" ratio, haproxy / wsmux, is reported for every row
# that has both, and has no target).
# Variables (-v): rowsfile (the table rows, one per line:
#   "FIGURE METRIC|label|unit|ratio base setup|target kind|value|target text",
#   target kinds: ratio_ge (wsmux/base >= value), plus_le (wsmux <= base +
#   value), abs_le (wsmux <= value), none), table (file the aligned table is
#   written to), json (file the JSON is written to), and the descriptive
#   ones, written into the JSON as they are: date, commit, dirty, nproc,
#   cpu, cpu_fm, cpu_mhz, hypervisor, kernel, uname_a, mem_kib, build_type,
#   sanitize, elapsed, load_start, load_end, cpu_own, cpu_other, cpu_steal
#   (percent of all CPUs during the run), socat_v, openssl_v, ssh_v,
#   haproxy_v, tls_socat, tls_edge, tls_haproxy, params ("NAME=VALUE ..."),
#   smoke, runs.
# Output: on stdout, the number of missed targets.
# Medians: the middle value, or the mean of the two middle values.

BEGIN {
  FS = "\t"
  nsetups = split("direct socat wsmux haproxy", setup_names, " ")
}

{
  key = $1 " " $2
  if (!(key in seen)) {
    seen[key] = 1
    order[++ngroups] = key
  }
  n = ++count[key, $3]
  val[key, $3, n] = $5
}

function esc(s) {
  gsub(/\\/, "\\\\", s)
  gsub(/"/, "\\\"", s)
  gsub(/\t/, " ", s)
  return s
}

function median(key, setup,    n, i, j, a, t) {
  n = count[key, setup]
  if (n == 0)
    return ""
  for (i = 1; i <= n; i++)
    a[i] = val[key, setup, i] + 0
  for (i = 2; i <= n; i++) { # insertion sort: a handful of runs
    t = a[i]
    for (j = i - 1; j >= 1 && a[j] > t; j--)
      a[j + 1] = a[j]
    a[j + 1] = t
  }
  if (n % 2)
    return a[(n + 1) / 2]
  return (a[n / 2] + a[n / 2 + 1]) / 2
}

function fmt(v, unit) {
  if (v == "")
    return "-"
  return sprintf(unit ~ /^KiB/ ? "%.2f" : "%.1f", v)
}

function fmt_ratio(r) {
  if (r == "")
    return "-"
  return sprintf(r < 0.1 ? "%.3fx" : "%.2fx", r)
}

function runs_json(key, setup,    n, i, s) {
  n = count[key, setup]
  s = "["
  for (i = 1; i <= n; i++)
    s = s (i > 1 ? "," : "") (val[key, setup, i] + 0)
  return s "]"
}

END {
  nrows = 0
  while ((getline line < rowsfile) > 0) {
    split(line, f, "|")
    rows[++nrows] = f[1]
    label[f[1]] = f[2]
    unit[f[1]] = f[3]
    base[f[1]] = f[4]
    kind[f[1]] = f[5]
    tval[f[1]] = f[6]
    ttext[f[1]] = f[7]
    inrows[f[1]] = 1
  }
  # The groups without a row (e.g. raw RSS before/after) go to the JSON only.
  nall = nrows
  for (i = 1; i <= nrows; i++)
    all[i] = rows[i]
  for (i = 1; i <= ngroups; i++)
    if (!(order[i] in inrows))
      all[++nall] = order[i]

  misses = 0
  hdr = sprintf("%-38s %10s %10s %10s %10s %-10s %7s %7s  %-18s %s", "figure",
                "direct", "socat TLS", "wsmux", "HAProxy", "unit", "ratio", "hop",
                "target", "result")
  print hdr > table
  gsub(/./, "-", hdr)
  print hdr > table
  for (i = 1; i <= nall; i++) {
    k = all[i]
    for (j = 1; j <= nsetups; j++)
      med[k, setup_names[j]] = median(k, setup_names[j])
    w = med[k, "wsmux"]
    b = med[k, base[k]]
    ratio[k] = (w != "" && b != "" && b + 0 != 0) ? w / b : ""
    h = med[k, "haproxy"]
    hop[k] = (h != "" && w != "" && w + 0 != 0) ? h / w : ""
    res = "-"
    if (kind[k] == "ratio_ge" && ratio[k] != "")
      res = ratio[k] >= tval[k] ? "PASS" : "MISS"
    else if (kind[k] == "plus_le" && w != "" && b != "")
      res = w <= b + tval[k] ? "PASS" : "MISS"
    else if (kind[k] == "abs_le" && w != "")
      res = w <= tval[k] + 0 ? "PASS" : "MISS"
    else if (kind[k] != "" && kind[k] != "none")
      res = "MISS" # a target without its numbers
    result[k] = res
    if (res == "MISS")
      misses++
    if (!(k in inrows))
      continue
    extra = ""
    if (kind[k] == "plus_le" && w != "" && b != "")
      extra = sprintf(" (%+.1f us)", w - b)
    printf "%-38s %10s %10s %10s %10s %-10s %7s %7s  %-18s %s%s\n", label[k],
           fmt(med[k, "direct"], unit[k]), fmt(med[k, "socat"], unit[k]),
           fmt(w, unit[k]), fmt(h, unit[k]), unit[k], fmt_ratio(ratio[k]),
           fmt_ratio(hop[k]), ttext[k] == "" ? "-" : ttext[k], res, extra > table
  }
  print "ratio: wsmux / the socat TLS chain (figure 7: wsmux / direct); medians of " runs " run(s)" > table
  print "HAProxy: wsmux through HAProxy to a second edge (figures 1-4 only); hop: HAProxy / wsmux, the extra" > table
  print "  hop's cost: MiB/s rows a ratio of throughputs (below 1: slower), us rows (RTT) a ratio of latencies (above 1: slower)" > table

  # The JSON document.
  printf "{\n" > json
  printf "  \"mode\": \"%s\",\n", smoke ? "smoke" : "full" > json
  printf "  \"date\": \"%s\",\n", esc(date) > json
  printf "  \"commit\": \"%s\",\n", esc(commit) > json
  printf "  \"tree_modified\": %s,\n", dirty > json
  printf "  \"runs\": %d,\n", runs > json
  printf "  \"elapsed_seconds\": %d,\n", elapsed > json
  printf "  \"build\": {\"type\": \"%s\", \"sanitize\": \"%s\"},\n",
         esc(build_type), esc(sanitize) > json
  printf "  \"machine\": {\"nproc\": %d, \"cpu\": \"%s\", \"cpu_family_model\": \"%s\", \"cpu_mhz\": %s,\n",
         nproc, esc(cpu), esc(cpu_fm), (cpu_mhz == "" ? "null" : cpu_mhz + 0) > json
  printf "              \"virtual_machine\": %s, \"kernel\": \"%s\", \"uname\": \"%s\", \"mem_kib\": %d,\n",
         hypervisor, esc(kernel), esc(uname_a), mem_kib > json
  printf "              \"load_average_start\": \"%s\", \"load_average_end\": \"%s\",\n",
         esc(load_start), esc(load_end) > json
  printf "              \"cpu_pct_this_run\": %s, \"cpu_pct_other_processes\": %s, \"cpu_pct_steal\": %s},\n",
         cpu_own + 0, cpu_other + 0, cpu_steal + 0 > json
  printf "  \"tools\": {\"socat\": \"%s\", \"openssl\": \"%s\", \"ssh\": \"%s\", \"haproxy\": \"%s\",\n",
         esc(socat_v), esc(openssl_v), esc(ssh_v), esc(haproxy_v) > json
  printf "            \"tls_socat\": \"%s\", \"tls_edge\": \"%s\", \"tls_haproxy\": \"%s\"},\n",
         esc(tls_socat), esc(tls_edge), esc(tls_haproxy) > json
  np = split(params, pp, " ")
  printf "  \"params\": {" > json
  for (i = 1; i <= np; i++) {
    eq = index(pp[i], "=")
    printf "%s\"%s\": \"%s\"", (i > 1 ? ", " : ""), esc(substr(pp[i], 1, eq - 1)),
           esc(substr(pp[i], eq + 1)) > json
  }
  printf "},\n" > json
  printf "  \"misses\": %d,\n", misses > json
  printf "  \"figures\": [\n" > json
  for (i = 1; i <= nall; i++) {
    k = all[i]
    split(k, kk, " ")
    printf "    {\"figure\": %d, \"metric\": \"%s\", \"label\": \"%s\", \"unit\": \"%s\",\n",
           kk[1], esc(kk[2]), esc(label[k]), esc(unit[k]) > json
    printf "     \"runs\": {" > json
    sep = ""
    for (j = 1; j <= nsetups; j++) {
      s = setup_names[j]
      if (count[k, s] == 0)
        continue
      printf "%s\"%s\": %s", sep, s, runs_json(k, s) > json
      sep = ", "
    }
    printf "},\n     \"median\": {" > json
    sep = ""
    for (j = 1; j <= nsetups; j++) {
      s = setup_names[j]
      if (med[k, s] == "")
        continue
      printf "%s\"%s\": %s", sep, s, med[k, s] + 0 > json
      sep = ", "
    }
    printf "},\n     \"ratio\": %s, \"ratio_of\": \"%s\", \"hop_ratio\": %s, \"hop_ratio_of\": \"haproxy/wsmux\",\n",
           ratio[k] == "" ? "null" : sprintf("%.4f", ratio[k]),
           base[k] == "" ? "" : "wsmux/" base[k],
           hop[k] == "" ? "null" : sprintf("%.4f", hop[k]) > json
    printf "     \"target\": \"%s\", \"result\": \"%s\"}%s\n", esc(ttext[k]),
           result[k] == "-" ? "info" : result[k], i < nall ? "," : "" > json
  }
  printf "  ]\n}\n" > json
  print misses
}
