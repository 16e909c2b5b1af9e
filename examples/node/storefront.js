// A storefront backend's calls to the virtual try-on service (@grpc/grpc-js):
// the shopper's A/B arm (Assign), the shopper wearing a garment (TryOn, image saved),
// then the order (RecordEvents).
//
//   TRYON_TARGET=localhost:50051 TRYON_API_KEY=tryon_... node storefront.js me.jpg SKU-1 out.jpg
//
// Environment: TRYON_TARGET (host:port, or dns:///name:port for round robin over every
// replica), TRYON_API_KEY (what `tryon keys add` printed; unset on a server without keys),
// TRYON_CA_FILE (PEM of the CA to trust: TLS; unset: plaintext), TRYON_EXPERIMENT (the
// A/B test's key; unset: no experiment calls), TRYON_PROTO_DIR (the proto/ folder).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = process.env.TRYON_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');
const TARGET = process.env.TRYON_TARGET || 'localhost:50051';
const DEADLINE_MS = 30000;

// Round robin over every address of the target, and gRPC's own retries of UNAVAILABLE (a
// replica starting or stopping). RESOURCE_EXHAUSTED carries a RetryInfo delay in the
// status details; a production client waits that long and tries again.
const SERVICE_CONFIG = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [
    {
      name: [{ service: 'tryon.v2.TryOnService' }, { service: 'tryon.v1.ExperimentService' }],
      retryPolicy: {
        maxAttempts: 4,
        initialBackoff: '0.1s',
        maxBackoff: '1s',
        backoffMultiplier: 2,
        retryableStatusCodes: ['UNAVAILABLE'],
      },
    },
  ],
};
const CHANNEL_OPTIONS = {
  'grpc.service_config': JSON.stringify(SERVICE_CONFIG),
  'grpc.max_receive_message_length': 64 * 1024 * 1024, // a PNG result can be large
  'grpc.per_rpc_retry_buffer_size': 16 * 1024 * 1024, // keep the photo for a retry
};

function loadPackage(file) {
  const definition = protoLoader.loadSync(path.join(PROTO_DIR, file), {
    includeDirs: [PROTO_DIR],
    keepCase: true, // field names as in the .proto: person_image, garment_sku
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}

function channelCredentials() {
  const caFile = process.env.TRYON_CA_FILE;
  return caFile
    ? grpc.credentials.createSsl(fs.readFileSync(caFile))
    : grpc.credentials.createInsecure();
}

// The API key goes with every call as `authorization: Bearer <key>`; never log it.
function callMetadata() {
  const metadata = new grpc.Metadata();
  const key = (process.env.TRYON_API_KEY || '').trim();
  if (key) metadata.set('authorization', `Bearer ${key}`);
  return metadata;
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    const options = { deadline: Date.now() + DEADLINE_MS };
    client[method](request, callMetadata(), options, (error, reply) =>
      error ? reject(error) : resolve(reply),
    );
  });
}

function describe(error) {
  const code = Object.keys(grpc.status).find((name) => grpc.status[name] === error.code);
  const requestId = error.metadata ? error.metadata.get('x-request-id')[0] : undefined;
  return `${code || error.code}: ${error.details}` + (requestId ? ` (request id ${requestId})` : '');
}

async function main() {
  const [photoFile, sku, outFile = 'tryon.jpg'] = process.argv.slice(2);
  if (!photoFile || !sku) {
    console.error('usage: node storefront.js PHOTO SKU [OUT]');
    process.exit(2);
  }
  const credentials = channelCredentials();
  const { TryOnService } = loadPackage('tryon/v2/tryon.proto').tryon.v2;
  const { ExperimentService } = loadPackage('tryon/v1/experiments.proto').tryon.v1;
  const tryon = new TryOnService(TARGET, credentials, CHANNEL_OPTIONS);
  const experiments = new ExperimentService(TARGET, credentials, CHANNEL_OPTIONS);
  const experiment = process.env.TRYON_EXPERIMENT;
  const unitId = 'shopper-42'; // the store's pseudonymous shopper id

  try {
    if (experiment) {
      const arm = await unary(experiments, 'Assign', { experiment_key: experiment, unit_id: unitId });
      console.log(`arm: ${arm.in_experiment ? arm.arm : 'not in the experiment'}`);
    }

    const response = await unary(tryon, 'TryOn', {
      person_image: fs.readFileSync(photoFile),
      garment_sku: sku,
      output: { format: 'IMAGE_FORMAT_JPEG', quality: 90 },
      unit_id: unitId,
    });
    fs.writeFileSync(outFile, response.image);
    console.log(
      `${outFile}: ${response.width}x${response.height} ${response.mime_type}, ` +
        `${response.garment_sku} revision ${response.garment_revision}, ` +
        `confidence ${response.confidence.toFixed(2)}`,
    );

    if (experiment) {
      const orderId = `order-${crypto.randomUUID()}`;
      const reply = await unary(experiments, 'RecordEvents', {
        experiment_key: experiment,
        events: [
          {
            event_id: orderId, // resending the same id is harmless: stored once
            unit_id: unitId,
            purchase: { order_id: orderId, items: [{ sku, quantity: 1, unit_price: 29.9 }] },
          },
        ],
      });
      console.log(`events stored: ${reply.stored}, duplicates: ${reply.duplicates}`);
    }
  } catch (error) {
    console.error(`try-on service error: ${describe(error)}`);
    process.exitCode = 1;
  } finally {
    tryon.close();
    experiments.close();
  }
}

main();
