expect_rc 0
expect_regex '^echo server on 127\.0\.0\.1:[0-9]+$'
expect_line '50 clients x 100 lines: 5000 echoed back intact'
