package io.qsup.control;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The control socket's wire protocol as a plain client sees it: greeting, negotiation, errors, limits, events. */
class ControlProtocolTest {
    private Path dir;
    private ControlServer server;
    private EventHub hub;

    @BeforeEach
    void start() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-ctl");
        hub = new EventHub();
        Map<String, ControlCommand> table = new HashMap<>();
        EventCommands.register(table, hub);
        server = new ControlServer(dir.resolve("qsupd.sock"), "users", table, hub, 64);
        server.start();
    }

    @AfterEach
    void stop() throws IOException {
        server.close();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @Test
    void greetsNegotiatesAndAnswersById() throws IOException {
        try (RawControlClient c = new RawControlClient(server.socketPath())) {
            JsonNode greeting = c.read();
            assertThat(greeting.path("QMP").path("version").path("package").asText()).startsWith("qsupd ");
            assertThat(greeting.path("QMP").path("capabilities").isArray()).isTrue();

            JsonNode early = c.command("{\"execute\":\"query-events\",\"id\":1}");
            assertThat(early.path("error").path("class").asText()).isEqualTo("CommandNotFound");
            assertThat(early.path("error").path("desc").asText()).contains("qmp_capabilities");
            assertThat(early.path("id").asInt()).isEqualTo(1);

            assertThat(c.command("{\"execute\":\"qmp_capabilities\"}").path("return").isObject()).isTrue();
            JsonNode r = c.command("{\"execute\":\"query-events\",\"id\":\"abc\"}");
            assertThat(r.path("return").isArray()).isTrue();
            assertThat(r.path("id").asText()).isEqualTo("abc");
        }
    }

    @Test
    void unknownCommandAndBadJsonGetErrorsAndTheConnectionStaysUsable() throws IOException {
        try (RawControlClient c = new RawControlClient(server.socketPath()).negotiated()) {
            JsonNode unknown = c.command("{\"execute\":\"no-such-thing\",\"id\":7}");
            assertThat(unknown.path("error").path("class").asText()).isEqualTo("CommandNotFound");
            assertThat(unknown.path("error").path("desc").asText()).contains("no-such-thing");

            JsonNode bad = c.command("{\"execute\": nonsense}");
            assertThat(bad.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(bad.path("error").path("desc").asText()).contains("JSON");

            JsonNode garbage = c.command("hello there");
            assertThat(garbage.path("error").path("desc").asText()).contains("JSON");

            JsonNode noExecute = c.command("{\"arguments\":{}}");
            assertThat(noExecute.path("error").path("desc").asText()).contains("execute");

            JsonNode badArgs = c.command("{\"execute\":\"event-subscribe\",\"arguments\":{\"vms\":\"web1\"}}");
            assertThat(badArgs.path("error").path("desc").asText()).contains("'vms' must be an array");

            assertThat(c.command("{\"execute\":\"query-events\"}").path("return").isArray()).isTrue();
        }
    }

    @Test
    void aLineOverOneMebibyteGetsAnErrorAndTheConnectionCloses() throws IOException {
        try (RawControlClient c = new RawControlClient(server.socketPath()).negotiated()) {
            String huge = "{\"execute\":\"query-events\",\"arguments\":{\"pad\":\"" + "x".repeat(1024 * 1024 + 10) + "\"}}\n";
            // a platform thread: junixsocket writes from a virtual thread can stall this socket's reads (#172)
            Thread writer = Thread.ofPlatform().daemon().start(() -> {
                try {
                    c.send(huge);
                } catch (IOException e) {
                    // the server may close before everything is written
                }
            });
            JsonNode r = c.read();
            assertThat(r.path("error").path("desc").asText()).contains("too large").contains("1 MiB");
            assertThat(c.read()).as("connection closed after the oversize line").isNull();
            writer.interrupt();
        }
        try (RawControlClient other = new RawControlClient(server.socketPath()).negotiated()) {
            assertThat(other.command("{\"execute\":\"query-events\"}").has("return")).isTrue();
        }
    }

    @Test
    void subscribersGetMatchingEventsAndHistoryKeepsThem() throws IOException {
        try (RawControlClient c = new RawControlClient(server.socketPath()).negotiated()) {
            c.command("{\"execute\":\"event-subscribe\",\"arguments\":{\"vms\":[\"web1\"]}}");
            hub.publish(event("db1", "stopped"));
            hub.publish(event("web1", "running"));
            JsonNode e = c.read();
            assertThat(e.path("event").asText()).isEqualTo("VM_STATE_CHANGED");
            assertThat(e.path("data").path("vm").asText()).isEqualTo("web1");
            assertThat(e.path("timestamp").path("seconds").asLong()).isPositive();

            JsonNode history = c.command("{\"execute\":\"query-events\",\"arguments\":{\"vms\":[\"db1\"]}}");
            assertThat(history.path("return")).hasSize(1);
            assertThat(history.path("return").get(0).path("data").path("new").asText()).isEqualTo("stopped");
        }
    }

    @Test
    void aSubscriberThatStopsReadingIsDroppedWithoutSlowingOthers() throws Exception {
        try (RawControlClient slow = new RawControlClient(server.socketPath()).negotiated();
                RawControlClient fast = new RawControlClient(server.socketPath()).negotiated()) {
            slow.command("{\"execute\":\"event-subscribe\"}");
            fast.command("{\"execute\":\"event-subscribe\"}");
            slow.socket.setReceiveBufferSize(4096);
            int total = 20_000;
            int batch = 32; // below the outbox limit: a reading client keeps up with bursts of this size
            java.util.concurrent.Semaphore received = new java.util.concurrent.Semaphore(0);
            Thread reader = Thread.ofVirtual().start(() -> {
                try {
                    for (int i = 0; i < total; i++) {
                        if (fast.read() == null) {
                            return;
                        }
                        received.release();
                    }
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            for (int i = 0; i < total; i += batch) {
                for (int j = i; j < i + batch; j++) {
                    hub.publish(event("web1", "n" + j));
                }
                assertThat(received.tryAcquire(batch, 10, TimeUnit.SECONDS))
                        .as("the reading subscriber got events %d..%d while the other one stalled", i, i + batch)
                        .isTrue();
            }
            reader.join(TimeUnit.SECONDS.toMillis(10));
            assertThat(reader.isAlive()).isFalse();

            // the stalled client, once it reads, finds a notice followed by the end of the connection
            JsonNode last = null;
            JsonNode m;
            while ((m = slow.read()) != null) {
                last = m;
            }
            assertThat(last).isNotNull();
            assertThat(last.path("event").asText()).isEqualTo(ControlSession.DROPPED_EVENT);
            assertThat(hub.subscriberCount()).isEqualTo(1);
        }
    }

    @Test
    void twoHundredConcurrentClientsAreServed() throws Exception {
        int clients = 200;
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        List<Future<Boolean>> results = new ArrayList<>();
        for (int i = 0; i < clients; i++) {
            Callable<Boolean> task = () -> {
                try (RawControlClient c = new RawControlClient(server.socketPath()).negotiated()) {
                    return c.command("{\"execute\":\"query-events\"}").has("return");
                }
            };
            results.add(pool.submit(task));
        }
        int ok = 0;
        for (Future<Boolean> f : results) {
            if (f.get(60, TimeUnit.SECONDS)) {
                ok++;
            }
        }
        pool.shutdown();
        assertThat(ok).isEqualTo(clients);
    }

    @Test
    void anotherUserOutsideTheGroupIsRefusedAndAGroupMemberIsServed() throws Exception {
        // Open the file mode so the kernel lets the connection through and qsupd's own check decides.
        Files.setPosixFilePermissions(server.socketPath(), PosixFilePermissions.fromString("rw-rw-rw-"));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        String request = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-events\"}\n";

        String outsider = runAs(List.of("--clear-groups"), request);
        assertThat(outsider).contains("AccessDenied").contains("uid 65534").contains("group 'users'");
        assertThat(outsider).doesNotContain("\"QMP\"");

        long usersGid = ((Number) Files.getAttribute(server.socketPath(), "unix:gid")).longValue();
        String member = runAs(List.of("--groups=" + usersGid), request);
        assertThat(member).contains("\"QMP\"").contains("\"return\":[]");
    }

    private String runAs(List<String> groupArgs, String input) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=65534", "--regid=65534"));
        cmd.addAll(groupArgs);
        cmd.addAll(List.of("socat", "-t", "2", "-", "UNIX-CONNECT:" + server.socketPath()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            p.getOutputStream().write(input.getBytes(StandardCharsets.UTF_8));
            p.getOutputStream().close();
            assertThat(p.waitFor(20, TimeUnit.SECONDS)).as("socat finished").isTrue();
            return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } finally {
            p.destroyForcibly();
        }
    }

    private static ControlEvent event(String vm, String newState) {
        var data = JsonNodeFactory.instance.objectNode().put("old", "starting").put("new", newState);
        return new ControlEvent("VM_STATE_CHANGED", vm, data, Instant.now());
    }

}
