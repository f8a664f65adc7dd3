package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The socket address forms {@code qsup qmp --socket} accepts. */
class QmpEndpointTest {

    @Test
    void parsesEveryForm() {
        assertThat(QmpEndpoint.parse("unix:/run/qsup/vms/web1/qmp.sock"))
                .isEqualTo(new QmpEndpoint.Unix(Path.of("/run/qsup/vms/web1/qmp.sock")));
        assertThat(QmpEndpoint.parse("/tmp/q.sock")).isEqualTo(new QmpEndpoint.Unix(Path.of("/tmp/q.sock")));
        assertThat(QmpEndpoint.parse("relative.sock")).isEqualTo(new QmpEndpoint.Unix(Path.of("relative.sock")));
        assertThat(QmpEndpoint.parse("tcp:127.0.0.1:4444")).isEqualTo(new QmpEndpoint.Tcp("127.0.0.1", 4444));
        assertThat(QmpEndpoint.parse("tcp:[::1]:4444")).isEqualTo(new QmpEndpoint.Tcp("::1", 4444));
        assertThat(QmpEndpoint.parse("tcp:[::1]:4444").toString()).isEqualTo("tcp:[::1]:4444");
    }

    @Test
    void badAddressesSayWhatIsAccepted() {
        assertThatThrownBy(() -> QmpEndpoint.parse("tcp:host"))
                .hasMessageContaining("'tcp:host' needs a host and a port").hasMessageContaining("tcp:HOST:PORT");
        assertThatThrownBy(() -> QmpEndpoint.parse("tcp:host:http")).hasMessageContaining("bad port 'http'");
        assertThatThrownBy(() -> QmpEndpoint.parse("tcp:host:70000")).hasMessageContaining("out of range");
        assertThatThrownBy(() -> QmpEndpoint.parse("udp:x")).hasMessageContaining("unknown scheme");
        assertThatThrownBy(() -> QmpEndpoint.parse("unix:")).hasMessageContaining("has no path");
    }
}
