package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.IntNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.qsup.testing.FakeQmpServer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The QMP client against a scripted server over a real unix socket: the faults QEMU will not produce on demand. */
class QmpClientFakeServerTest {
    private static final Duration HANG_GUARD = Duration.ofSeconds(20);
    private final QmpClient.Options fast = options(QmpClient.Options.defaults()
            .withConnectTimeout(Duration.ofSeconds(2)).withDefaultTimeout(Duration.ofSeconds(5)).withName("fake"));

    /** The transport under test: junixsocket here; the JDK's channel in {@link QmpClientJdkChannelTest}. */
    QmpClient.Options options(QmpClient.Options base) {
        return base;
    }

    private FakeQmpServer server;
    private QmpClient client;

    @AfterEach
    void cleanUp() {
        if (client != null) {
            client.close();
        }
        if (server != null) {
            server.close();
        }
    }

    private QmpClient connect(FakeQmpServer.Script script) throws QmpException {
        server = FakeQmpServer.start(script);
        client = QmpClient.connect(server.endpoint(), fast);
        return client;
    }

    private static ObjectNode obj(String json) {
        try {
            return (ObjectNode) QmpFraming.mapper().readTree(json);
        } catch (Exception e) {
            throw new IllegalArgumentException(json, e);
        }
    }

    @Test
    void noGreetingFailsTheConnectWithAClearErrorAtTheDeadline() {
        server = FakeQmpServer.start(FakeQmpServer.script().silence());
        QmpClient.Options opts = fast.withConnectTimeout(Duration.ofMillis(500));
        long t0 = System.nanoTime();
        assertTimeoutPreemptively(HANG_GUARD, () -> assertThatThrownBy(() -> QmpClient.connect(server.endpoint(), opts))
                .isInstanceOf(QmpConnectException.class)
                .hasMessageContaining("no QMP greeting from unix:" + server.socket())
                .hasMessageContaining("within 500ms"));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(Duration.ofMillis(500));
    }

    @Test
    void garbageGreetingIsAProtocolErrorShowingWhatCame() {
        server = FakeQmpServer.start(FakeQmpServer.script().raw("SSH-2.0-OpenSSH_9.2\r\n"));
        assertThatThrownBy(() -> QmpClient.connect(server.endpoint(), fast))
                .isInstanceOf(QmpProtocolException.class)
                .hasMessageContaining("bad QMP greeting from unix:" + server.socket())
                .hasMessageContaining("invalid keyword 'SSH'")
                .hasMessageContaining("SSH-2.0-OpenSSH_9.2\\r\\n");
    }

    @Test
    void jsonThatIsNotAGreetingIsRefused() {
        server = FakeQmpServer.start(FakeQmpServer.script().raw("{\"hello\": \"world\"}\r\n"));
        assertThatThrownBy(() -> QmpClient.connect(server.endpoint(), fast))
                .isInstanceOf(QmpProtocolException.class)
                .hasMessageContaining("expected {\"QMP\"")
                .hasMessageContaining("{\"hello\":\"world\"}");
    }

    @Test
    void messagesSplitByteByByteAreReassembled() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().bytewise().handshake()
                .expect("query-status").reply(obj("{\"status\": \"paused\", \"singlestep\": false, \"running\": false}")));
        assertThat(c.greeting().version()).isEqualTo("7.2.0");
        assertThat(c.greeting().pkg()).isEqualTo("fake");
        assertThat(c.queryStatus()).isEqualTo(new QmpStatus("paused", false, false));
        // we were offered oob, so we asked for it
        assertThat(server.received().get(0).toString()).isEqualTo(
                "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]},\"id\":1}");
    }

    @Test
    void oobIsNotRequestedWhenNotOffered() throws Exception {
        connect(FakeQmpServer.script().greeting().expect("qmp_capabilities").reply());
        assertThat(server.received().get(0).has("arguments")).isFalse();
    }

    /**
     * A CLI's session: once closed, none of its threads is left inside the socket. The JVM's exit waits up to 300 ms
     * for a thread in native code, which every {@code qsup} run paid while its reader was a virtual thread (whose read
     * leaves the JDK's poller thread in epoll_wait) or a platform thread still in its read.
     */
    @Test
    void aSessionForAnExitingProcessLeavesNoReaderInTheSocketOnceClosed() throws Exception {
        server = FakeQmpServer.start(FakeQmpServer.script().handshake().expect("query-status")
                .reply(obj("{\"status\": \"running\", \"running\": true}")));
        QmpClient c = QmpClient.connect(server.endpoint(), fast.withName("exiting").forExit());
        assertThat(c.queryStatus().running()).isTrue();
        assertThat(io.qsup.testing.ThreadNames.all()).filteredOn(t -> t.name().equals("qmp-reader exiting"))
                .as("the reader, on a platform thread").singleElement()
                .satisfies(t -> assertThat(t.virtual()).isFalse());
        c.close();
        assertThat(Thread.getAllStackTraces().keySet()).extracting(Thread::getName)
                .as("threads alive right after close()").doesNotContain("qmp-reader exiting");
    }

    @Test
    void twoRepliesInOneWriteAreMatchedToTheirCalls() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().handshake().expect("first").expect("second")
                .oneWrite(FakeQmpServer.script()
                        .replyTo(1, TextNode.valueOf("second-result"))
                        .replyTo(0, TextNode.valueOf("first-result"))));
        CompletableFuture<JsonNode> a = c.executeAsync("first", null, Duration.ofSeconds(5));
        CompletableFuture<JsonNode> b = c.executeAsync("second", null, Duration.ofSeconds(5));
        assertThat(a.get(10, TimeUnit.SECONDS).asText()).isEqualTo("first-result");
        assertThat(b.get(10, TimeUnit.SECONDS).asText()).isEqualTo("second-result");
    }

    @Test
    void eventsBeforeTheReplyReachListenersFirstAndInOrder() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().handshake().expect("stop")
                .event("STOP").event("X_SECOND", obj("{\"n\": 2}"))
                .oneWrite(FakeQmpServer.script().event("X_THIRD").reply()));
        List<String> seen = Collections.synchronizedList(new ArrayList<>());
        c.addEventListener(e -> {
            seen.add(e.name());
            assertThat(Thread.currentThread().getName()).isEqualTo("qmp-events fake");
        });
        c.execute("stop");
        seen.add("reply");
        assertThat(seen).containsExactly("STOP", "X_SECOND", "X_THIRD", "reply");
    }

    @Test
    void aBrokenLineFromQemuCostsOnlyTheReplyItHeld() throws Exception {
        // "first" gets a reply whose string never closes; the framing must not swallow the reply to "second"
        QmpClient c = connect(FakeQmpServer.script().handshake().expect("first")
                .raw("{\"return\": {\"status\": \"runn\r\n").expect("second").reply(obj("{\"status\": \"running\"}"))
                .event("STOP"));
        EventWaiter stop = c.expectEvent("STOP", e -> true);
        CompletableFuture<JsonNode> first = c.executeAsync("first", null, Duration.ofSeconds(2));
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            assertThat(c.execute("second", null, Duration.ofSeconds(5)).path("status").asText()).isEqualTo("running");
            assertThat(stop.await(Duration.ofSeconds(5)).name()).isEqualTo("STOP");
            assertThatThrownBy(() -> first.get(10, TimeUnit.SECONDS))
                    .hasCauseInstanceOf(QmpTimeoutException.class)
                    .hasMessageContaining("no reply to 'first'")
                    .hasMessageContaining("dropped a malformed message")
                    .hasMessageContaining("JSON parse error, stray '\"runn\r'");
        });
        assertThat(c.isConnected()).isTrue();
    }

    @Test
    void replyWithUnknownIdIsDroppedAndTheRealReplyStillMatches() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().handshake().expect("query-name")
                .replyWithId(IntNode.valueOf(424242), TextNode.valueOf("not yours"))
                .reply(obj("{\"name\": \"web1\"}")));
        assertThat(c.execute("query-name").path("name").asText()).isEqualTo("web1");
        assertThat(c.isConnected()).isTrue();
    }

    @Test
    void errorReplyRaisesClassDescAndCommand() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().handshake().expect("no-such-thing")
                .replyError("CommandNotFound", "The command no-such-thing has not been found"));
        assertThatThrownBy(() -> c.execute("no-such-thing"))
                .isInstanceOfSatisfying(QmpErrorException.class, e -> {
                    assertThat(e.errorClass()).isEqualTo("CommandNotFound");
                    assertThat(e.desc()).isEqualTo("The command no-such-thing has not been found");
                    assertThat(e.command()).isEqualTo("no-such-thing");
                });
        assertThat(c.isConnected()).isTrue();
    }

    @Test
    void silenceTimesOutAtTheDeadlineAndTheSessionStaysUsable() throws Exception {
        // The server answers "slow" only after "next" arrived: the late reply must be dropped, not given to "next".
        QmpClient c = connect(FakeQmpServer.script().handshake().expect("slow").expect("next")
                .replyTo(0, TextNode.valueOf("late")).replyTo(1, TextNode.valueOf("next-result")));
        Duration deadline = Duration.ofMillis(300);
        long t0 = System.nanoTime();
        assertTimeoutPreemptively(HANG_GUARD, () -> assertThatThrownBy(() -> c.execute("slow", null, deadline))
                .isInstanceOfSatisfying(QmpTimeoutException.class, e -> {
                    assertThat(e.command()).isEqualTo("slow");
                    assertThat(e.timeout()).isEqualTo(deadline);
                    assertThat(e.getMessage()).contains("no reply to 'slow'").contains("within 300ms");
                }));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(deadline);
        assertThat(c.isConnected()).isTrue();
        assertThat(c.execute("next").asText()).isEqualTo("next-result");
    }

    @Test
    void aServerThatStopsReadingCannotBlockCallersPastTheirDeadline() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().handshake().stall());
        ObjectNode big = QmpFraming.mapper().createObjectNode().put("data", "x".repeat(4 * 1024 * 1024));
        Duration deadline = Duration.ofMillis(300);
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            // the first message alone is larger than the socket buffers, so its write blocks for good
            assertThatThrownBy(() -> c.execute("big", big, deadline)).isInstanceOf(QmpTimeoutException.class);
            assertThatThrownBy(() -> c.execute("query-status", null, deadline))
                    .isInstanceOf(QmpTimeoutException.class).hasMessageContaining("no reply to 'query-status'");
            c.close(); // must not wait for the stuck write either
        });
        assertThat(c.isConnected()).isFalse();
    }

    @Test
    void aServerThatAnsweredAndThenStopsReadingCannotBlockSmallCallsPastTheirDeadline() throws Exception {
        // a session in step writes a small call on the caller's own thread; once a call goes unanswered, none may
        QmpClient c = connect(FakeQmpServer.script().handshake().expect("first").reply().stall());
        assertThat(c.execute("first")).isNotNull();
        ObjectNode args = QmpFraming.mapper().createObjectNode().put("data", "x".repeat(4 * 1024));
        Duration deadline = Duration.ofMillis(5);
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            // 200 calls of 4 KiB are about four times what the socket buffers hold before a write blocks
            for (int i = 0; i < 200; i++) {
                assertThatThrownBy(() -> c.execute("small", args, deadline)).isInstanceOf(QmpTimeoutException.class);
            }
            c.close();
        });
        assertThat(c.isConnected()).isFalse();
    }

    @Test
    void manyCallersAtOnceEachGetTheirOwnReply() throws Exception {
        // callers that write their own messages and callers whose messages go through the writer share one socket
        QmpClient c = connect(FakeQmpServer.script().handshake().echo());
        List<Thread> callers = new ArrayList<>();
        List<String> wrong = Collections.synchronizedList(new ArrayList<>());
        for (int t = 0; t < 8; t++) {
            int caller = t;
            callers.add(Thread.ofVirtual().start(() -> {
                for (int i = 0; i < 300; i++) {
                    String mine = caller + "/" + i + "/" + "y".repeat(i % 7 == 0 ? 70_000 : i);
                    try {
                        JsonNode r = c.execute("echo", QmpFraming.mapper().createObjectNode().put("v", mine));
                        if (!mine.equals(r.path("v").asText())) {
                            wrong.add(caller + "/" + i + " got " + QmpConnection.abbreviate(r));
                        }
                    } catch (QmpException e) {
                        wrong.add(caller + "/" + i + ": " + e.getMessage());
                    }
                }
            }));
        }
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            for (Thread t : callers) {
                t.join();
            }
        });
        assertThat(wrong).as("calls that got no reply or another call's").isEmpty();
        assertThat(c.isConnected()).isTrue();
    }

    @Test
    void threadsAreNamedAfterTheSessionAndEndWithIt() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().handshake());
        assertThat(sessionThreads()).contains("qmp-reader fake", "qmp-writer fake");
        c.close();
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            while (!sessionThreads().isEmpty()) {
                Thread.sleep(10);
            }
        });
    }

    /** The session's threads, virtual ones included. */
    static List<String> sessionThreads() {
        return io.qsup.testing.ThreadNames.all().stream().map(io.qsup.testing.ThreadNames.Named::name)
                .filter(n -> n.endsWith(" fake") && n.startsWith("qmp-")).toList();
    }

    @Test
    void disconnectMidMessageFailsThePendingCallWithoutHanging() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().handshake().expect("query-status")
                .raw("{\"return\": {\"status\": \"runn").disconnect());
        CountDownLatch ended = new CountDownLatch(1);
        List<QmpException> reasons = Collections.synchronizedList(new ArrayList<>());
        c.onDisconnect(e -> {
            reasons.add(e);
            ended.countDown();
        });
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            assertThatThrownBy(() -> c.execute("query-status", null, Duration.ofSeconds(60)))
                    .isInstanceOf(QmpDisconnectedException.class)
                    .hasMessageContaining("no reply to 'query-status'")
                    .hasMessageContaining("in the middle of a QMP message");
            assertThat(ended.await(10, TimeUnit.SECONDS)).isTrue();
            // a call after the end fails at once, it does not wait for its deadline
            assertThatThrownBy(() -> c.execute("query-status", null, Duration.ofSeconds(60)))
                    .isInstanceOf(QmpDisconnectedException.class);
        });
        assertThat(c.isConnected()).isFalse();
        assertThat(reasons).hasSize(1);
        // a listener added after the end hears about it at once
        List<QmpException> late = new ArrayList<>();
        c.onDisconnect(late::add);
        assertThat(late).hasSize(1);
    }

    @Test
    void closeFailsPendingCallsAtOnce() throws Exception {
        QmpClient c = connect(FakeQmpServer.script().handshake().thenSilence());
        CompletableFuture<JsonNode> f = c.executeAsync("query-status", null, Duration.ofMinutes(5));
        server.received(); // the server got it or will; either way close must not wait
        c.close();
        assertTimeoutPreemptively(HANG_GUARD, () -> assertThatThrownBy(() -> f.get())
                .isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(QmpDisconnectedException.class)
                .hasMessageContaining("closed by this client"));
    }

    @Test
    void aLineOf64MiBIsRefusedWhileTheHeapStaysBounded() throws Exception {
        server = FakeQmpServer.start(FakeQmpServer.script().handshake().expect("query-status")
                .hugeLine(64L * 1024 * 1024));
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        ProcessBuilder pb = new ProcessBuilder(java.toString(), "-Xmx64m", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), OversizeProbe.class.getName(), server.socket().toString());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        try {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            Thread drain = Thread.ofVirtual().start(() -> {
                try {
                    p.getInputStream().transferTo(buf);
                } catch (java.io.IOException ignored) {
                    // the process ended
                }
            });
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("probe JVM finished").isTrue();
            drain.join(5000);
            String out = buf.toString(StandardCharsets.UTF_8);
            assertThat(p.exitValue()).as(out).isZero();
            assertThat(out).doesNotContain("OutOfMemoryError")
                    .contains("RESULT disconnected: no reply to 'query-status'")
                    .contains("QMP message larger than 10 MiB (10485760 bytes) refused")
                    .contains("CAUSE QmpProtocolException");
            long peak = Long.parseLong(out.replaceAll("(?s).*PEAK_HEAP (\\d+).*", "$1"));
            long max = Long.parseLong(out.replaceAll("(?s).*MAX_HEAP (\\d+).*", "$1"));
            System.out.printf("oversize probe: peak heap %d bytes of max %d%n", peak, max);
            // the whole 64 MiB line could not even fit in this heap; the client used at most a fraction of it
            assertThat(max).isLessThan(64L * 1024 * 1024 + 1);
            assertThat(peak).isLessThan(max);
            assertThat(server.hugeLineAborted()).as("the client hung up before the line ended").isTrue();
        } finally {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
