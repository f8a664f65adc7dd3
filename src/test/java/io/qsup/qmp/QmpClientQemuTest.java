package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.testing.TestQemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.newsclub.net.unix.AFPipe;

/** The QMP client against a real qemu-system-x86_64 (TCG, paused at start), over a unix socket and over TCP. */
class QmpClientQemuTest {
    enum Transport { UNIX, TCP }

    @TempDir
    Path work;

    private TestQemu qemu;
    private QmpClient client;

    @AfterEach
    void cleanUp() {
        if (client != null) {
            client.close();
        }
        if (qemu != null) {
            qemu.close();
        }
    }

    private QmpClient connect(Transport t) throws QmpException {
        qemu = t == Transport.TCP ? TestQemu.startWithTcp(work, List.of()) : TestQemu.start(work, List.of());
        QmpEndpoint ep = t == Transport.TCP ? qemu.tcpEndpoint() : qemu.unixEndpoint();
        client = QmpClient.connect(ep, QmpClient.Options.defaults().withName("test-" + t.name().toLowerCase()));
        return client;
    }

    private static ObjectNode args() {
        return QmpFraming.mapper().createObjectNode();
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void negotiatesAndReportsTheVersionOfTheBinary(Transport t) throws Exception {
        QmpClient c = connect(t);
        assertThat(c.greeting().version()).isEqualTo(TestQemu.binaryVersion());
        assertThat(c.greeting().capabilities()).contains("oob");
        // negotiation happened: a command that needs command mode works
        assertThat(c.execute("query-version").path("qemu").path("major").asInt()).isEqualTo(c.greeting().major());
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void queryStatusOfAVmThatWasNeverStarted(Transport t) throws Exception {
        assertThat(connect(t).queryStatus()).isEqualTo(new QmpStatus("prelaunch", false, false));
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void contAndStopAreConfirmedByResumeAndStopEvents(Transport t) throws Exception {
        QmpClient c = connect(t);
        EventWaiter resumed = c.expectEvent("RESUME", null);
        c.cont();
        assertThat(resumed.await(Duration.ofSeconds(10)).name()).isEqualTo("RESUME");
        assertThat(c.queryStatus().status()).isEqualTo("running");
        assertThat(c.queryStatus().running()).isTrue();

        EventWaiter stopped = c.expectEvent("STOP", null);
        c.stop();
        assertThat(stopped.await(Duration.ofSeconds(10)).timestamp()).isNotNull();
        assertThat(c.queryStatus()).isEqualTo(new QmpStatus("paused", false, false));
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void quitDeliversShutdownBeforeTheConnectionEnds(Transport t) throws Exception {
        QmpClient c = connect(t);
        List<String> seen = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch ended = new CountDownLatch(1);
        c.addEventListener(e -> seen.add(e.name() + " " + e.data().path("reason").asText()));
        c.onDisconnect(e -> {
            seen.add("EOF");
            ended.countDown();
        });
        c.quit();
        assertThat(ended.await(20, TimeUnit.SECONDS)).as("session ended").isTrue();
        assertThat(seen).containsSubsequence("SHUTDOWN host-qmp-quit", "EOF").last().isEqualTo("EOF");
        assertThat(qemu.process().waitFor(20, TimeUnit.SECONDS)).as("QEMU exited").isTrue();
        assertThat(qemu.process().exitValue()).isZero();
        assertThat(c.isConnected()).isFalse();
    }

    @Test
    void passesAPipeToQemuWithGetfdAndAddFd() throws Exception {
        QmpClient c = connect(Transport.UNIX);
        AFPipe pipe = AFPipe.open();
        try {
            ObjectNode getfd = args().put("fdname", "qsup-pipe");
            assertThat(c.executeWithFds("getfd", getfd, pipe.source().getFileDescriptor()).isEmpty()).isTrue();

            JsonNode added = c.executeWithFds("add-fd", args().put("fdset-id", 7).put("opaque", "qsup-test"),
                    pipe.sink().getFileDescriptor());
            assertThat(added.path("fdset-id").asInt()).isEqualTo(7);
            int qemuFd = added.path("fd").asInt();
            ArrayNode sets = c.queryFdsets();
            assertThat(sets.toString()).contains("\"fdset-id\":7").contains("\"fd\":" + qemuFd)
                    .contains("\"opaque\":\"qsup-test\"");
            // the descriptor QEMU now holds really is our pipe
            assertThat(Files.readSymbolicLink(Path.of("/proc/" + qemu.pid() + "/fd/" + qemuFd)).toString())
                    .startsWith("pipe:[");

            // the named fd exists exactly once: closing it works, closing it again is refused
            c.execute("closefd", args().put("fdname", "qsup-pipe"));
            assertThatThrownBy(() -> c.execute("closefd", args().put("fdname", "qsup-pipe")))
                    .isInstanceOfSatisfying(QmpErrorException.class,
                            e -> assertThat(e.desc()).contains("qsup-pipe"));
        } finally {
            pipe.source().close();
            pipe.sink().close();
        }
    }

    @Test
    void fdPassingOverTcpIsRefusedBeforeSending() throws Exception {
        QmpClient c = connect(Transport.TCP);
        AFPipe pipe = AFPipe.open();
        try {
            assertThatThrownBy(() -> c.executeWithFds("getfd", args().put("fdname", "x"),
                    pipe.source().getFileDescriptor()))
                    .isInstanceOf(QmpException.class)
                    .hasMessageContaining("only over a unix socket");
            assertThat(c.isConnected()).isTrue();
        } finally {
            pipe.source().close();
            pipe.sink().close();
        }
    }
}
