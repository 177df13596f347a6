import { Controller, Get, Header } from '@nestjs/common';
import { PipelineMetrics } from '@orderflow/telemetry';

/** `GET /metrics`: the app's Prometheus metrics (text exposition format 0.0.4; see the metrics table in docs/architecture.md, "Observability"). */
@Controller()
export class MetricsController {
  constructor(private readonly metrics: PipelineMetrics) {}

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.metrics.scrape();
  }
}
