package main

// The Go stubs of the API, generated from ../../proto into gen/ (not committed): needs
// protoc, protoc-gen-go and protoc-gen-go-grpc on PATH. The .proto files name no Go
// package, so the M options give each one its import path here.
//go:generate sh -c "mkdir -p gen && protoc -I ../../proto --go_out=gen --go_opt=module=example.com/tryon-storefront/gen --go-grpc_out=gen --go-grpc_opt=module=example.com/tryon-storefront/gen --go_opt=Mtryon/v2/tryon.proto=example.com/tryon-storefront/gen/tryon/v2 --go-grpc_opt=Mtryon/v2/tryon.proto=example.com/tryon-storefront/gen/tryon/v2 --go_opt=Mtryon/v1/experiments.proto=example.com/tryon-storefront/gen/tryon/v1 --go-grpc_opt=Mtryon/v1/experiments.proto=example.com/tryon-storefront/gen/tryon/v1 tryon/v2/tryon.proto tryon/v1/experiments.proto"
