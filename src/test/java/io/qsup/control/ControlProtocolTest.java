package io.qsup.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpErrorException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
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
        server = new ControlServer(dir.resolve("qsupd.sock"), "users", table, hub,
                ControlServer.Limits.defaults().withOutboxMessages(64));
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
            assertThat(badArgs.path("error").path("desc").asText())
                    .isEqualTo("Invalid parameter type for 'vms', expected: array");

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
    void aClientThatPipelinesWithoutReadingIsToldItDidNotReadItsReplies() throws Exception {
        for (int i = 0; i < 50; i++) {
            hub.publish(event("web1", "n" + i)); // makes each query-events reply a few KiB
        }
        try (RawControlClient c = new RawControlClient(server.socketPath()).negotiated()) {
            c.socket.setReceiveBufferSize(4096);
            // a platform thread: junixsocket writes from a virtual thread can stall this socket's reads (#172)
            Thread writer = Thread.ofPlatform().daemon().start(() -> {
                try {
                    for (int i = 0; i < 5000; i++) {
                        c.send("{\"execute\":\"query-events\",\"id\":" + i + "}\n");
                    }
                } catch (IOException e) {
                    // qsupd closes the connection once it has given up on this client
                }
            });
            writer.join(TimeUnit.SECONDS.toMillis(30));
            JsonNode last = lastMessage(c);
            assertThat(last).isNotNull();
            assertThat(last.path("event").asText()).as("%s", last).isNotEqualTo(ControlSession.DROPPED_EVENT);
            assertThat(last.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(last.path("error").path("desc").asText()).contains("did not read its replies")
                    .contains("64 messages").doesNotContain("events");
        }
    }

    @Test
    void aReplyLargerThanAClientAcceptsBecomesAnErrorAndTheSessionGoesOn() throws Exception {
        String pad = "x".repeat(11 * 1024);
        for (int i = 0; i < EventHub.HISTORY_LIMIT; i++) {
            var data = JsonNodeFactory.instance.objectNode().put("event", "BIG").put("pad", pad);
            hub.publish(new ControlEvent("VM_QMP_EVENT", i % 2 == 0 ? "web1" : "db1", data, Instant.now()));
        }
        try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(server.socketPath()))) {
            assertThatThrownBy(() -> c.execute("query-events"))
                    .isInstanceOfSatisfying(QmpErrorException.class, e -> {
                        assertThat(e.errorClass()).isEqualTo("GenericError");
                        assertThat(e.desc()).contains("query-events").contains("too large").contains("10 MiB")
                                .contains("'vms'");
                    });
            var onlyOne = JsonNodeFactory.instance.objectNode();
            onlyOne.putArray("vms").add("web1");
            onlyOne.putArray("events").add("VM_STATE_CHANGED");
            assertThat(c.execute("query-events", onlyOne).isArray()).isTrue();
        }
    }

    @Test
    void pastTheConnectionLimitAClientIsToldWhyAndOnceOneClosesANewOneIsServed() throws Exception {
        List<RawControlClient> served = new ArrayList<>();
        try (ControlServer capped = extraServer("capped.sock", ControlServer.Limits.defaults().withMaxConnections(5))) {
            for (int i = 0; i < 5; i++) {
                served.add(new RawControlClient(capped.socketPath()).negotiated());
            }
            try (RawControlClient sixth = new RawControlClient(capped.socketPath())) {
                JsonNode refusal = sixth.read();
                assertThat(refusal.path("error").path("class").asText()).as("%s", refusal).isEqualTo("GenericError");
                assertThat(refusal.path("error").path("desc").asText())
                        .contains("too many control connections").contains("at most 5")
                        .contains("control-max-connections");
                assertThat(sixth.read()).as("connection closed after the refusal").isNull();
            }
            for (int i = 0; i < 40; i++) {
                try (RawControlClient refused = new RawControlClient(capped.socketPath())) {
                    assertThat(refused.read().has("error")).isTrue();
                }
            }
            assertThat(controlSessionThreads()).as("threads of the control socket with 5 served and 41 refused")
                    .isLessThanOrEqualTo(2 * 5);

            served.remove(0).close();
            RawControlClient next = awaitServed(capped.socketPath(), Duration.ofSeconds(5));
            served.add(next);
            assertThat(next.command("{\"execute\":\"query-events\"}").has("return")).isTrue();
            for (RawControlClient c : served) {
                assertThat(c.command("{\"execute\":\"query-events\"}").has("return")).isTrue();
            }
        } finally {
            for (RawControlClient c : served) {
                c.close();
            }
        }
    }

    @Test
    void aClientThatNeverNegotiatesIsClosedAfterTheTimeout() throws Exception {
        try (ControlServer strict = extraServer("strict.sock",
                ControlServer.Limits.defaults().withNegotiationTimeout(Duration.ofSeconds(1)));
                RawControlClient negotiated = new RawControlClient(strict.socketPath()).negotiated();
                RawControlClient silent = new RawControlClient(strict.socketPath())) {
            assertThat(silent.read().has("QMP")).isTrue();
            long start = System.nanoTime();
            JsonNode bye = silent.read();
            assertThat(bye).as("a message before the connection closes").isNotNull();
            assertThat(bye.path("error").path("desc").asText()).contains("qmp_capabilities").contains("within 1s");
            assertThat(silent.read()).as("closed by qsupd").isNull();
            Duration took = Duration.ofNanos(System.nanoTime() - start);
            assertThat(took).isLessThan(Duration.ofSeconds(4));

            // a client that negotiated is not bound by the timeout
            assertThat(negotiated.command("{\"execute\":\"query-events\"}").has("return")).isTrue();
        }
    }

    @Test
    void aClientThatTakesSixSecondsToNegotiateIsServedWithTheDefaults() throws Exception {
        // a CLI that connects at once and loads its code after, on a loaded host, or a client in a paused process
        try (RawControlClient slow = new RawControlClient(server.socketPath())) {
            assertThat(slow.read().has("QMP")).isTrue();
            Thread.sleep(6_000);
            JsonNode reply = slow.command("{\"execute\":\"qmp_capabilities\"}");
            assertThat(reply).as("the late negotiation").isEqualTo(JsonNodeFactory.instance.objectNode()
                    .set("return", JsonNodeFactory.instance.objectNode()));
            assertThat(slow.command("{\"execute\":\"query-events\"}").has("return")).isTrue();
        }
    }

    @Test
    void theDefaultsAreHalfAMinuteToNegotiateAnd128Connections() {
        ControlServer.Limits d = ControlServer.Limits.defaults();
        assertThat(d.negotiationTimeout()).isEqualTo(Duration.ofSeconds(30));
        assertThat(d.maxConnections()).isEqualTo(128);
    }

    private ControlServer extraServer(String name, ControlServer.Limits limits) throws IOException {
        Map<String, ControlCommand> table = new HashMap<>();
        EventCommands.register(table, hub);
        ControlServer s = new ControlServer(dir.resolve(name), "users", table, hub, limits);
        s.start();
        return s;
    }

    /** Connects until qsupd greets instead of refusing (it frees a slot once it has seen the other client go). */
    private static RawControlClient awaitServed(Path socket, Duration within) throws Exception {
        long deadline = System.nanoTime() + within.toNanos();
        while (true) {
            RawControlClient c = new RawControlClient(socket);
            JsonNode first = c.read();
            if (first != null && first.has("QMP")) {
                JsonNode r = c.command("{\"execute\":\"qmp_capabilities\"}");
                assertThat(r.has("return")).as("%s", r).isTrue();
                return c;
            }
            c.close();
            if (System.nanoTime() > deadline) {
                throw new AssertionError("still refused after " + within + ": " + first);
            }
            Thread.sleep(50);
        }
    }

    private static long controlSessionThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("control-reader ") || t.getName().startsWith("control-writer "))
                .count();
    }

    /** Reads to the end of the connection; a reset after the last message counts as the end. */
    private static JsonNode lastMessage(RawControlClient c) {
        JsonNode last = null;
        try {
            JsonNode m;
            while ((m = c.read()) != null) {
                last = m;
            }
        } catch (IOException e) {
            // qsupd closed with our unread requests still queued: the kernel reports a reset after the data
        }
        return last;
    }

    @Test
    void twoHundredConcurrentClientsAreServedWithTheLimitRaisedTo256() throws Exception {
        int clients = 200;
        int ok = 0;
        try (ControlServer roomy = extraServer("roomy.sock", ControlServer.Limits.defaults().withMaxConnections(256));
                ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Boolean>> results = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                Callable<Boolean> task = () -> {
                    try (RawControlClient c = new RawControlClient(roomy.socketPath()).negotiated()) {
                        return c.command("{\"execute\":\"query-events\"}").has("return");
                    }
                };
                results.add(pool.submit(task));
            }
            for (Future<Boolean> f : results) {
                if (f.get(60, TimeUnit.SECONDS)) {
                    ok++;
                }
            }
        }
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
