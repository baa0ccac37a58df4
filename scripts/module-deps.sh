#!/usr/bin/env bash
# The import edges between the library's modules, and a check that they form no circle.
#
#   scripts/module-deps.sh          prints "from -> to" for every edge; exits 1 on a cycle
#
# A node is a top-level module (src/X.rs or src/X/), except that align, backend, memory and
# model are split into their submodules (memory::feedback, backend::cpu, ...); their mod.rs
# is the node X itself. An edge is any `crate::`, `super::`, `self::` or child-module path
# outside `#[cfg(test)]` code (test modules sit at the end of a file), resolved through the
# `pub use` re-exports of the module it names. `pub use` lines are not edges themselves:
# re-exporting a child is a facade, not a dependency. src/bin is not part of the library.
set -euo pipefail
cd "$(dirname "$0")/.."

SPLIT="align backend memory model"
mapfile -t files < <(find src -name '*.rs' -not -path 'src/bin/*' | sort)

# One line per module: "M <module>"; per re-export: "R <module> <name> <path>"; per path
# used in code: "U <module> <path>" (as written, relative ones included). The root is "@".
facts() {
  awk '
    function module_of(f,   p) {
      p = f; sub(/^src\//, "", p); sub(/\.rs$/, "", p); sub(/\/mod$/, "", p)
      if (p == "lib") return "@"
      gsub(/\//, "::", p); return p
    }
    # "a::b::{c, d::e, f as g}" -> " a::b::c a::b::d::e a::b::f"
    function expand(use,   prefix, body, n, items, i, out) {
      gsub(/[ \t]/, "", use)
      if (match(use, /\{.*\}/)) {
        prefix = substr(use, 1, RSTART - 1); body = substr(use, RSTART + 1, RLENGTH - 2)
        n = split(body, items, ","); out = ""
        for (i = 1; i <= n; i++) {
          if (items[i] == "") continue
          sub(/as[A-Za-z0-9_]+$/, "", items[i])
          out = out " " prefix items[i]
        }
        use = out
      } else sub(/as[A-Za-z0-9_]+$/, "", use)
      gsub(/::self( |$)/, " ", use)
      return use
    }
    function emit(m, text,   n, stmts, i, st, paths, k, c, p, pre, nm) {
      n = split(text, stmts, ";")
      for (i = 1; i <= n; i++) {
        st = stmts[i]
        if (match(st, /(^|[ \t\]}{])pub(\([a-z]+\))?[ \t]+use[ \t]+/)) {
          k = split(expand(substr(st, RSTART + RLENGTH)), paths, " ")
          for (c = 1; c <= k; c++) { p = paths[c]; nm = p; sub(/.*::/, "", nm); print "R", m, nm, p }
          continue
        }
        while (match(st, /[a-z_][a-z0-9_]*(::[A-Za-z0-9_]+)*::(\{[^{}]*\}|[A-Za-z0-9_]+)/)) {
          pre = RSTART > 1 ? substr(st, RSTART - 1, 1) : " "
          p = substr(st, RSTART, RLENGTH); st = substr(st, RSTART + RLENGTH)
          if (pre ~ /[A-Za-z0-9_:]/) continue
          k = split(expand(p), paths, " ")
          for (c = 1; c <= k; c++) print "U", m, paths[c]
        }
      }
    }
    FNR == 1 { if (mod != "") emit(mod, text); mod = module_of(FILENAME); print "M", mod; text = ""; tests = 0 }
    /^#\[cfg\(test\)\]/ { tests = 1 }
    tests { next }
    { line = $0; sub(/\/\/.*$/, "", line); text = text " " line }
    END { if (mod != "") emit(mod, text) }
  ' "${files[@]}"
}

# "from -> to" per edge between nodes.
edges() {
  facts | awk -v split_list="$SPLIT" '
    function node(m,   parts, n) {
      n = split(m, parts, "::")
      if (n >= 2 && (parts[1] in split_mods)) return parts[1] "::" parts[2]
      return parts[1]
    }
    function parent(m,   i) {
      for (i = length(m); i > 1; i--) if (substr(m, i - 1, 2) == "::") return substr(m, 1, i - 2)
      return ""
    }
    function join(a, b) { return a == "" ? b : a "::" b }
    # The absolute path of `path` as written in module `m`, or "" for an external crate.
    function absolute(m, path,   first, rest) {
      first = path; sub(/::.*/, "", first)
      rest = (first == path) ? "" : substr(path, length(first) + 3)
      if (first == "crate") return rest
      if (first == "super") return rest == "" ? parent(m) : join(parent(m), rest)
      if (first == "self") return rest == "" ? m : join(m, rest)
      if (join(m, first) in mods) return join(m, path)
      return ""
    }
    # The module whose code the absolute `path` names, through re-exports.
    function resolve(path, depth,   parts, n, i, mod) {
      n = split(path, parts, "::"); mod = ""
      for (i = 1; i <= n && (join(mod, parts[i]) in mods); i++) mod = join(mod, parts[i])
      if (i <= n && depth < 8 && ((mod SUBSEP parts[i]) in reexport)) return resolve(reexport[mod, parts[i]], depth + 1)
      return mod
    }
    BEGIN { n = split(split_list, s, " "); for (i = 1; i <= n; i++) split_mods[s[i]] = 1 }
    { if ($2 == "@") $2 = "" }
    $1 == "M" { mods[$2] = 1; next }
    $1 == "R" { r_mod[++nr] = $2; r_name[nr] = $3; r_path[nr] = $4; next }
    $1 == "U" { u_mod[++nu] = $2; u_path[nu] = $3; next }
    END {
      for (i = 1; i <= nr; i++) { a = absolute(r_mod[i], r_path[i]); if (a != "") reexport[r_mod[i], r_name[i]] = a }
      for (i = 1; i <= nu; i++) {
        if (u_mod[i] == "") continue
        a = absolute(u_mod[i], u_path[i]); if (a == "") continue
        to = resolve(a, 0); if (to == "") continue
        from = node(u_mod[i]); to = node(to)
        if (from != to) print from " -> " to
      }
    }' | sort -u
}

out=$(edges)
echo "$out"
if ! loop=$(sed 's/ -> / /' <<<"$out" | tsort 2>&1 >/dev/null); then
  echo "module-deps: the imports form a cycle:" >&2
  echo "$loop" >&2
  exit 1
fi
echo "module-deps: $(wc -l <<<"$out") edges, no cycle"
