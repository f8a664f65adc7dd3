package io.qsup.qmp.schema;

import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpException;
import io.qsup.testing.TestQemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A throwaway real QEMU (paused, no devices) with a QMP session to it, and its schema. {@link #ensureRunning}
 * starts a fresh one when a command has ended the last.
 */
final class RealQemuSchema implements AutoCloseable {
    private final Path work;
    private TestQemu qemu;
    private QmpClient client;
    private QmpSchema schema;
    private int starts;

    RealQemuSchema() throws IOException {
        work = Files.createTempDirectory("qsup-schema-test");
    }

    QmpClient client() throws QmpException {
        ensureRunning();
        return client;
    }

    QmpSchema schema() throws QmpException {
        ensureRunning();
        return schema;
    }

    /** How many QEMUs were started: more than one means a command ended one. */
    int starts() {
        return starts;
    }

    void ensureRunning() throws QmpException {
        if (client != null && client.isConnected() && qemu.process().isAlive()) {
            return;
        }
        stopQemu();
        qemu = TestQemu.start(work.resolve("qemu-" + starts), List.of());
        starts++;
        client = QmpClient.connect(qemu.unixEndpoint());
        schema = QmpSchema.parse(client.execute("query-qmp-schema"));
    }

    private void stopQemu() {
        if (client != null) {
            client.close();
        }
        if (qemu != null) {
            qemu.close();
        }
    }

    @Override
    public void close() {
        stopQemu();
        try (Stream<Path> s = Files.walk(work)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // under the temp dir, cleaned eventually
        }
    }
}
