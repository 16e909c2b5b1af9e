// Command storefront shows a storefront backend's calls to the virtual try-on service:
// the shopper's A/B arm (Assign), the shopper wearing a garment (TryOn, image saved),
// then the order (RecordEvents).
//
//	TRYON_TARGET=localhost:50051 TRYON_API_KEY=tryon_... go run . me.jpg SKU-1 out.jpg
//
// Environment: TRYON_TARGET (host:port, or dns:///name:port for round robin over every
// replica), TRYON_API_KEY (what `tryon keys add` printed; unset on a server without
// keys), TRYON_CA_FILE (PEM of the CA to trust: TLS; unset: plaintext), TRYON_EXPERIMENT
// (the A/B test's key; unset: no experiment calls).
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tryonv1 "example.com/tryon-storefront/gen/tryon/v1"
	tryonv2 "example.com/tryon-storefront/gen/tryon/v2"
)

// Round robin over every address of the target, and gRPC's own retries of UNAVAILABLE (a
// replica starting or stopping).
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "tryon.v2.TryOnService"}, {"service": "tryon.v1.ExperimentService"}],
    "retryPolicy": {
      "maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

const (
	callTimeout   = 30 * time.Second
	maxAttempts   = 4
	maxRetryDelay = 5 * time.Second
)

// apiKey sends the storefront's key with every call as `authorization: Bearer <key>`.
type apiKey string

func (k apiKey) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}

// RequireTransportSecurity is false so that the example also runs against a local server
// without TLS; return true in production to keep the key off plaintext connections.
func (apiKey) RequireTransportSecurity() bool { return false }

// retryDelay is the server's RetryInfo delay when err is RESOURCE_EXHAUSTED with one
// (queue full, the key's rate used up) and it is short enough to wait for.
func retryDelay(err error) (time.Duration, bool) {
	s, ok := status.FromError(err)
	if !ok || s.Code() != codes.ResourceExhausted {
		return 0, false
	}
	for _, detail := range s.Details() {
		if info, ok := detail.(*errdetails.RetryInfo); ok {
			delay := info.GetRetryDelay().AsDuration()
			return delay, delay <= maxRetryDelay
		}
	}
	return 0, false
}

// retryResourceExhausted retries a unary call refused with RESOURCE_EXHAUSTED after the
// delay the server asked for, which gRPC's own retry policy cannot read.
func retryResourceExhausted(ctx context.Context, method string, req, reply any,
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	for attempt := 1; ; attempt++ {
		err := invoker(ctx, method, req, reply, cc, opts...)
		delay, ok := retryDelay(err)
		if !ok || attempt == maxAttempts {
			return err
		}
		if deadline, set := ctx.Deadline(); set && time.Until(deadline) < delay {
			return err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return err
		}
	}
}

func dial(target string) (*grpc.ClientConn, error) {
	transport := insecure.NewCredentials()
	if caFile := os.Getenv("TRYON_CA_FILE"); caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in TRYON_CA_FILE %s", caFile)
		}
		transport = credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	}
	options := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithUnaryInterceptor(retryResourceExhausted),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)), // a PNG can be large
	}
	if key := strings.TrimSpace(os.Getenv("TRYON_API_KEY")); key != "" {
		options = append(options, grpc.WithPerRPCCredentials(apiKey(key)))
	}
	return grpc.NewClient(target, options...)
}

// describe names a failed call's code, message and the request id the server logged it
// under (never the API key).
func describe(err error, trailer metadata.MD) string {
	text := err.Error()
	if s, ok := status.FromError(err); ok {
		text = fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	if ids := trailer.Get("x-request-id"); len(ids) > 0 {
		text += " (request id " + ids[0] + ")"
	}
	return text
}

func run(photoFile, sku, outFile string) error {
	target := os.Getenv("TRYON_TARGET")
	if target == "" {
		target = "localhost:50051"
	}
	conn, err := dial(target)
	if err != nil {
		return err
	}
	defer conn.Close()
	tryon := tryonv2.NewTryOnServiceClient(conn)
	experiments := tryonv1.NewExperimentServiceClient(conn)
	experiment := os.Getenv("TRYON_EXPERIMENT")
	unitID := "shopper-42" // the store's pseudonymous shopper id
	var trailer metadata.MD

	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), callTimeout)
	}

	if experiment != "" {
		ctx, cancel := call()
		defer cancel()
		arm, err := experiments.Assign(ctx, &tryonv1.AssignRequest{
			ExperimentKey: experiment, UnitId: unitID,
		}, grpc.Trailer(&trailer))
		if err != nil {
			return errors.New(describe(err, trailer))
		}
		if arm.GetInExperiment() {
			fmt.Printf("arm: %s\n", arm.GetArm())
		} else {
			fmt.Println("arm: not in the experiment")
		}
	}

	photo, err := os.ReadFile(photoFile)
	if err != nil {
		return err
	}
	ctx, cancel := call()
	defer cancel()
	response, err := tryon.TryOn(ctx, &tryonv2.TryOnRequest{
		PersonImage: photo,
		GarmentSku:  sku,
		Output:      &tryonv2.OutputOptions{Format: tryonv2.ImageFormat_IMAGE_FORMAT_JPEG, Quality: 90},
		UnitId:      unitID,
	}, grpc.Trailer(&trailer))
	if err != nil {
		return errors.New(describe(err, trailer))
	}
	if err := os.WriteFile(outFile, response.GetImage(), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %dx%d %s, %s revision %d, confidence %.2f\n", outFile,
		response.GetWidth(), response.GetHeight(), response.GetMimeType(),
		response.GetGarmentSku(), response.GetGarmentRevision(), response.GetConfidence())

	if experiment != "" {
		suffix := make([]byte, 8)
		if _, err := rand.Read(suffix); err != nil {
			return err
		}
		orderID := "order-" + hex.EncodeToString(suffix)
		ctx, cancel := call()
		defer cancel()
		reply, err := experiments.RecordEvents(ctx, &tryonv1.RecordEventsRequest{
			ExperimentKey: experiment,
			Events: []*tryonv1.Event{{
				EventId: orderID, // resending the same id is harmless: stored once
				UnitId:  unitID,
				Kind: &tryonv1.Event_Purchase{Purchase: &tryonv1.Purchase{
					OrderId: orderID,
					Items:   []*tryonv1.LineItem{{Sku: sku, Quantity: 1, UnitPrice: 29.9}},
				}},
			}},
		}, grpc.Trailer(&trailer))
		if err != nil {
			return errors.New(describe(err, trailer))
		}
		fmt.Printf("events stored: %d, duplicates: %d\n", reply.GetStored(), reply.GetDuplicates())
	}
	return nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: storefront PHOTO SKU [OUT]")
		os.Exit(2)
	}
	outFile := "tryon.jpg"
	if len(os.Args) > 3 {
		outFile = os.Args[3]
	}
	if err := run(os.Args[1], os.Args[2], outFile); err != nil {
		fmt.Fprintf(os.Stderr, "try-on service error: %v\n", err)
		os.Exit(1)
	}
}
