/** Prometheus metrics (prom-client): requests by route and status, latency, batch sizes, queue depth, the EP. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface ServerMetrics {
  registry: Registry;
  requests: Counter<'route' | 'status'>;
  latency: Histogram<'route'>;
  batchSize: Histogram<'model'>;
  queueDepth: Gauge<'model'>;
  executionProvider: Gauge<'model' | 'ep'>;
}

export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  return {
    registry,
    requests: new Counter({
      name: 'cnnx_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['route', 'status'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'cnnx_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'cnnx_inference_batch_size',
      help: 'Images per inference call (after micro-batching)',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'cnnx_inference_queue_depth',
      help: 'Images waiting for a batch',
      labelNames: ['model'],
      registers: [registry],
    }),
    executionProvider: new Gauge({
      name: 'cnnx_execution_provider',
      help: 'Execution provider serving each model (value 1)',
      labelNames: ['model', 'ep'],
      registers: [registry],
    }),
  };
}
