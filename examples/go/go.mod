module example.com/tryon-storefront

go 1.22
