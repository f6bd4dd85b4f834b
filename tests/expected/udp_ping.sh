expect_rc 0
expect_regex '^pinging 127\.0\.0\.1:[0-9]+$'
expect_count '^pong [0-9]: [0-9.]+ us$' 10
expect_regex '^10/10 pongs, mean round trip [0-9.]+ us$'
