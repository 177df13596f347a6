// Tests run several instances of an app on one host (in-process stacks, apps spawned by the CLI, the fault suite's
// pairs): each takes any free HTTP port for its metrics and health, advertised on loopback.
process.env.METRICS_PORT ??= '0';
process.env.METRICS_PUBLIC_HOST ??= '127.0.0.1';
