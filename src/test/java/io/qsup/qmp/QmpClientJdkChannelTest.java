package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.FakeQmpServer;
import io.qsup.testing.ThreadNames;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Every fault of {@link QmpClientFakeServerTest} over the JDK's own unix {@code SocketChannel}, the transport of
 * sessions that pass no file descriptors (the CLI's to qsupd, and qsupd's to each QEMU).
 */
class QmpClientJdkChannelTest extends QmpClientFakeServerTest {
    @Override
    QmpClient.Options options(QmpClient.Options base) {
        return base.withoutFdPassing();
    }

    @Test
    void aSessionWithoutFdPassingWaitsOnVirtualThreadsOnly() throws Exception {
        try (FakeQmpServer server = FakeQmpServer.start(FakeQmpServer.script().handshake());
                QmpClient c = QmpClient.connect(server.endpoint(), QmpClient.Options.defaults()
                        .withConnectTimeout(Duration.ofSeconds(5)).withName("vt").withoutFdPassing())) {
            assertThat(c.isConnected()).isTrue();
            assertThat(ThreadNames.all()).filteredOn(t -> t.name().endsWith(" vt"))
                    .extracting(ThreadNames.Named::name).contains("qmp-reader vt", "qmp-writer vt", "qmp-events vt");
            assertThat(ThreadNames.all()).filteredOn(t -> t.name().endsWith(" vt")).as("platform threads of the session")
                    .allMatch(ThreadNames.Named::virtual);
        }
    }
}
