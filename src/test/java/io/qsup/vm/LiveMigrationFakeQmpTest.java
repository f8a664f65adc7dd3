package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpFraming;
import io.qsup.testing.FakeQmpServer;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The source side of {@link LiveMigration} against a scripted QMP server, for the endings real QEMU will not produce
 * on demand: a source left paused by a failure, a migration that never ends, a cancel from outside.
 */
class LiveMigrationFakeQmpTest {
    private static final String URI = "tcp:192.0.2.7:49152";
    private final List<AutoCloseable> closers = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : closers.reversed()) {
            c.close();
        }
    }

    @Test
    void aFailureThatLeavesTheSourcePausedIsReportedInQemusWordsAndTheSourceResumed() throws Exception {
        AtomicBoolean running = new AtomicBoolean(true);
        QmpClient source = serve(cmd -> switch (cmd.path("execute").asText()) {
            case "migrate" -> {
                running.set(false); // the source stopped for the switch-over, then the transfer failed
                yield obj();
            }
            case "query-migrate" -> obj().put("status", "failed")
                    .put("error-desc", "Unable to write to socket: Connection reset by peer");
            case "query-status" -> status(running.get());
            case "cont" -> {
                running.set(true);
                yield obj();
            }
            default -> obj();
        });

        LiveMigration.Outcome o = LiveMigration.send("web1", source, URI, settings(Duration.ofSeconds(30)), () -> false);

        assertThat(o).isEqualTo(new LiveMigration.Outcome.Failed(
                "migration to " + URI + " failed: Unable to write to socket: Connection reset by peer"));
        assertThat(running.get()).as("the source was resumed with cont").isTrue();
    }

    @Test
    void aFailedMigrationWhoseSourceQemuResumedItselfGetsNoCont() throws Exception {
        List<String> seen = new ArrayList<>();
        QmpClient source = serve(cmd -> {
            seen.add(cmd.path("execute").asText());
            return switch (cmd.path("execute").asText()) {
                case "query-migrate" -> obj().put("status", "failed").put("error-desc", "Connection refused");
                case "query-status" -> status(true);
                default -> obj();
            };
        });

        LiveMigration.Outcome o = LiveMigration.send("web1", source, URI, settings(Duration.ofSeconds(30)), () -> false);

        assertThat(o).isInstanceOf(LiveMigration.Outcome.Failed.class);
        assertThat(((LiveMigration.Outcome.Failed) o).reason()).endsWith("failed: Connection refused");
        assertThat(seen).doesNotContain("cont").contains("migrate-set-capabilities", "migrate-set-parameters", "migrate");
    }

    @Test
    void aMigrationThatDoesNotCompleteInTimeIsCancelledAndSaysWhy() throws Exception {
        AtomicBoolean cancelled = new AtomicBoolean();
        QmpClient source = serve(cmd -> switch (cmd.path("execute").asText()) {
            case "migrate_cancel" -> {
                cancelled.set(true);
                yield obj();
            }
            case "query-migrate" -> {
                ObjectNode r = obj().put("status", cancelled.get() ? "cancelled" : "active");
                r.putObject("ram").put("remaining", 4096).put("transferred", 123);
                yield r;
            }
            case "query-status" -> status(true);
            default -> obj();
        });

        LiveMigration.Outcome o = LiveMigration.send("web1", source, URI, settings(Duration.ofMillis(400)), () -> false);

        assertThat(cancelled.get()).isTrue();
        assertThat(((LiveMigration.Outcome.Failed) o).reason())
                .contains("cancelled: it did not complete within 400ms").contains("4096 bytes left");
    }

    @Test
    void aStopRequestedDuringTheMigrationCancelsIt() throws Exception {
        AtomicBoolean cancelled = new AtomicBoolean();
        QmpClient source = serve(cmd -> switch (cmd.path("execute").asText()) {
            case "migrate_cancel" -> {
                cancelled.set(true);
                yield obj();
            }
            case "query-migrate" -> obj().put("status", cancelled.get() ? "cancelled" : "active");
            case "query-status" -> status(true);
            default -> obj();
        });
        long start = System.nanoTime();

        LiveMigration.Outcome o = LiveMigration.send("web1", source, URI, settings(Duration.ofMinutes(5)),
                () -> System.nanoTime() - start > Duration.ofMillis(200).toNanos());

        assertThat(((LiveMigration.Outcome.Failed) o).reason()).endsWith("cancelled: a stop was requested, or qsupd"
                + " is exiting");
    }

    @Test
    void aCompletedMigrationReportsQemusFigures() throws Exception {
        QmpClient source = serve(cmd -> switch (cmd.path("execute").asText()) {
            case "query-migrate" -> {
                ObjectNode r = obj().put("status", "completed").put("downtime", 42);
                r.putObject("ram").put("transferred", 70_000_000L);
                yield r;
            }
            case "query-status" -> status(true);
            default -> obj();
        });

        LiveMigration.Outcome o = LiveMigration.send("web1", source, URI, settings(Duration.ofSeconds(30)), () -> false);

        LiveMigration.Outcome.Completed c = (LiveMigration.Outcome.Completed) o;
        assertThat(c.downtime()).isEqualTo(Duration.ofMillis(42));
        assertThat(c.transferred()).isEqualTo(70_000_000L);
    }

    // ---- helpers ----

    private static LiveMigration.Settings settings(Duration timeout) {
        return new LiveMigration.Settings(timeout, 1L << 30, Duration.ofMillis(300), Duration.ofSeconds(5));
    }

    private static ObjectNode obj() {
        return QmpFraming.mapper().createObjectNode();
    }

    private static ObjectNode status(boolean running) {
        return obj().put("status", running ? "running" : "paused").put("running", running);
    }

    /** A fake QEMU monitor answering each command with {@code answer(command)}. */
    private QmpClient serve(Function<ObjectNode, JsonNode> answer) throws Exception {
        FakeQmpServer server = FakeQmpServer.start(FakeQmpServer.script().handshake().step(c -> {
            while (true) {
                ObjectNode m;
                try {
                    m = c.read();
                } catch (IOException closed) {
                    return;
                }
                if (m == null) {
                    return;
                }
                ObjectNode reply = obj();
                reply.set("return", answer.apply(m));
                if (m.has("id")) {
                    reply.set("id", m.get("id"));
                }
                c.send(reply);
            }
        }));
        closers.add(server);
        QmpClient client = QmpClient.connect(server.endpoint());
        closers.add(client);
        return client;
    }
}
