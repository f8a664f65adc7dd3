package io.qsup.metrics;

import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.qsup.config.DaemonSettings;
import io.qsup.vm.VmStats;
import java.io.IOException;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * The Prometheus endpoint ({@code metrics-listen}): the Prometheus Java client's HTTP server on {@code /metrics}, with
 * qsupd's families ({@link MetricFamilies}) and the client's JVM instrumentation in a registry of its own.
 *
 * <p>Threading: requests run on a small pool of platform threads ({@code metrics-http N}); each scrape reads
 * snapshots only (see {@link QsupCollector}), so no VM can hold a scrape up.
 */
public final class MetricsServer implements AutoCloseable {
    private static final int THREADS = 4;

    private final HTTPServer server;
    private final ExecutorService pool;

    private MetricsServer(HTTPServer server, ExecutorService pool) {
        this.server = server;
        this.pool = pool;
    }

    /**
     * Binds {@code listen} and starts serving.
     *
     * @param vms    every VM's stats, read at each scrape; must never block
     * @param daemon the daemon's own figures
     * @throws IOException when the address cannot be bound (in use, not local)
     */
    public static MetricsServer start(DaemonSettings.MetricsListen listen, Supplier<List<VmStats>> vms,
            DaemonFigures daemon) throws IOException {
        PrometheusRegistry registry = new PrometheusRegistry();
        registry.register(new QsupCollector(vms, daemon, Clock.systemUTC()));
        JvmMetrics.builder().register(registry);
        ExecutorService pool = Executors.newFixedThreadPool(THREADS,
                Thread.ofPlatform().name("metrics-http ", 1).daemon(true).factory());
        try {
            HTTPServer server = HTTPServer.builder()
                    .hostname(listen.host())
                    .port(listen.port())
                    .registry(registry)
                    .metricsHandlerPath("/metrics")
                    .registerHealthHandler(true)
                    .executorService(pool)
                    .buildAndStart();
            return new MetricsServer(server, pool);
        } catch (IOException | RuntimeException e) {
            pool.shutdownNow();
            throw e;
        }
    }

    /** The port actually bound. */
    public int port() {
        return server.getPort();
    }

    @Override
    public void close() {
        server.close();
        pool.shutdownNow();
    }
}
