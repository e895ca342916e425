library(testthat)
library(magmap)

test_check("magmap")
