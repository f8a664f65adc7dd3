package io.qsup.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A real Prometheus server (Debian's {@code prometheus} package, installed by {@code scripts/setup}) as a child
 * process: a temp config scraping one target every second, its TSDB in a temp folder, its web API on 127.0.0.1 and a
 * free port. {@link #close()} kills it by pid.
 */
public final class PrometheusServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Process process;
    private final Path log;
    private final int port;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private PrometheusServer(Process process, Path log, int port) {
        this.process = process;
        this.log = log;
        this.port = port;
    }

    /** Starts Prometheus in {@code dir}, scraping {@code target} ({@code HOST:PORT}) every second. */
    public static PrometheusServer start(Path dir, String target) throws IOException, InterruptedException {
        Path config = dir.resolve("prometheus.yml");
        Files.writeString(config, """
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                  evaluation_interval: 1s
                scrape_configs:
                  - job_name: qsupd
                    static_configs:
                      - targets: ['%s']
                """.formatted(target));
        int port = freePort();
        Path log = dir.resolve("prometheus.log");
        Process p = new ProcessBuilder("prometheus", "--config.file=" + config,
                "--storage.tsdb.path=" + Files.createDirectories(dir.resolve("tsdb")),
                "--web.listen-address=127.0.0.1:" + port)
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        PrometheusServer s = new PrometheusServer(p, log, port);
        s.awaitReady(Duration.ofSeconds(60));
        return s;
    }

    /** A TCP port nothing listens on right now. */
    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    public long pid() {
        return process.pid();
    }

    private void awaitReady(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new AssertionError("prometheus exited with " + process.exitValue() + ":\n" + Files.readString(log));
            }
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                        + "/-/ready")).timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(200);
        }
        throw new AssertionError("prometheus not ready within " + timeout + ":\n" + Files.readString(log));
    }

    /** The {@code data.result} of an instant query through the HTTP API. */
    public JsonNode query(String promql) throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                + "/api/v1/query?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8)))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        JsonNode body = JSON.readTree(r.body());
        if (!"success".equals(body.path("status").asText())) {
            throw new AssertionError("query " + promql + " failed: " + r.body());
        }
        return body.path("data").path("result");
    }

    /** Queries until the result satisfies {@code p}; fails with the last result and the target's health. */
    public JsonNode awaitQuery(String promql, Predicate<JsonNode> p, Duration timeout)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        JsonNode last = null;
        while (System.nanoTime() < deadline) {
            last = query(promql);
            if (p.test(last)) {
                return last;
            }
            Thread.sleep(500);
        }
        throw new AssertionError("'" + promql + "' still gives " + last + " after " + timeout + "; targets: "
                + targets());
    }

    /** {@code /api/v1/targets}: whether Prometheus reaches the target, and its last error. */
    public String targets() throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/targets"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
    }

    /** SIGTERM, then SIGKILL if it lingers; by pid, never by name. */
    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
