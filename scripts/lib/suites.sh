# suites.sh: how scripts/test and scripts/check-asan run a suite and count
# its results.  Sourced; expects $top (the checkout), $venv (the virtualenv)
# and $out (where logs go), and keeps the running totals in $passed and
# $failed.  A suite that ends without a countable result counts as one
# failure, so that a crash is never read as "nothing to do".

passed=${passed:-0}
failed=${failed:-0}

fail_setup() {
	echo "test: $1" >&2
	echo "$passed passed, $((failed + 1)) failed"
	exit 1
}

# pg_regress: one test per file in test/regress/sql/.
run_regress() {
	local log="$out/$1.log" ok bad
	make -s installcheck >"$log" 2>&1
	cat "$log"
	ok=$(grep -cE '^(ok|test) .* ok( |$)|\.\.\. ok' "$log")
	bad=$(grep -cE 'FAILED|failed \(ignored\)' "$log")
	if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	[ -f build/regress/regression.diffs ] && cat build/regress/regression.diffs
	passed=$((passed + ok))
	failed=$((failed + bad))
}

# pgTAP: one test per assertion.
run_pgtap() {
	local log="$out/$1.log" ok bad
	pg_prove --verbose --ext .sql -r test/pgtap >"$log" 2>&1
	cat "$log"
	ok=$(grep -cE '^ok [0-9]+' "$log")
	bad=$(grep -cE '^not ok [0-9]+' "$log")
	if ! grep -q '^Result: PASS' "$log" && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
}

# pytest: one test per test function.  run_pytest NAME ARGS... runs
# "pytest ARGS" with its log in $out/NAME.log.
run_pytest() {
	local log="$out/$1.log" summary ok bad
	shift
	"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" 2>&1 | tee "$log"
	summary=$(tail -n 1 "$log")
	ok=$(echo "$summary" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
	bad=$(echo "$summary" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s+=$1} END {print s+0}')
	if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
}
