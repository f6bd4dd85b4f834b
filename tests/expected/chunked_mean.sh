# chunked_mean: the pool's mean over 64 chunks equals the serial mean within 1e-9 (relative),
# and both are the known mean of the generated data.
expect_rc 0
expect_line 'data: 4194304 doubles (32 MiB) in 64 chunks of 65536, map chunksize 4'
expect_regex '^mean over 4194304 values \(process pool\): 4\.99993084166[0-9]+$'
expect_regex '^mean over 4194304 values \(serial\): +4\.99993084166[0-9]+$'
awk '/\(process pool\):/ { a = $NF + 0 } /\(serial\):/ { b = $NF + 0 }
     END { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d / b <= 1e-9) }' "$OUT" ||
  { echo "FAIL: the two means differ by more than 1e-9"; fail=1; }
expect_regex '^relative difference [0-9.]+e[-+][0-9]+: match$'
expect_regex '^time: pool [0-9.]+ s \(copying included\), serial [0-9.]+ s$'
expect_elapsed_between 0 5.0
