module ecv.invalid/gotls

go 1.19
