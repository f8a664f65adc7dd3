package io.qsup.qmp;

import static io.qsup.testing.FakeGuestAgent.concat;
import static io.qsup.testing.FakeGuestAgent.normal;
import static io.qsup.testing.FakeGuestAgent.syncReply;
import static io.qsup.testing.FakeGuestAgent.text;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qsup.testing.FakeGuestAgent;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/** The guest-agent client against a scripted agent on a real unix socket: resync, garbage, silence, reconnect. */
class GuestAgentClientFakeAgentTest {
    private static final Duration T = Duration.ofSeconds(2);

    @Test
    void garbageAndStaleRepliesBeforeTheSyncReplyAreDropped() throws Exception {
        try (FakeGuestAgent agent = new FakeGuestAgent((conn, req, delim) -> {
            if (req.path("execute").asText().equals("guest-sync-delimited")) {
                // what a confused agent may have queued: noise, a stale reply, then the real answer
                return concat(text("garbage here\n{\"return\": 12345}\n"), syncReply(req));
            }
            return text("{\"return\": {\"version\": \"9.2\"}}\n");
        }); GuestAgentClient ga = new GuestAgentClient("vm1", agent.endpoint())) {
            assertThat(ga.execute("guest-info", null, T).path("version").asText()).isEqualTo("9.2");
            assertThat(agent.received).extracting(FakeGuestAgent.Received::command)
                    .containsExactly("guest-sync-delimited", "guest-info");
            assertThat(agent.received.get(0).afterDelimiter()).as("0xFF is sent before the sync").isTrue();
        }
    }

    @Test
    void aDelimiterInTheMiddleOfAMessageDropsTheHalfBeforeIt() throws Exception {
        try (FakeGuestAgent agent = new FakeGuestAgent((conn, req, delim) -> {
            if (req.path("execute").asText().equals("guest-sync-delimited")) {
                // half a stale reply, cut by the delimiter, in one write with the real answer
                return concat(text("{\"return\": {\"half\": \"a stri"), syncReply(req));
            }
            return normal(req);
        }); GuestAgentClient ga = new GuestAgentClient("vm1", agent.endpoint())) {
            ga.ping(T);
            ga.ping(T);
            assertThat(agent.received).extracting(FakeGuestAgent.Received::command)
                    .containsExactly("guest-sync-delimited", "guest-ping", "guest-ping");
        }
    }

    @Test
    void silenceTimesOutWithinTheDeadlineAndTheNextCallResyncs() throws Exception {
        AtomicBoolean silent = new AtomicBoolean(true);
        try (FakeGuestAgent agent = new FakeGuestAgent((conn, req, delim) -> {
            if (req.path("execute").asText().equals("guest-sync-delimited")) {
                return syncReply(req);
            }
            return silent.get() ? null : normal(req);
        }); GuestAgentClient ga = new GuestAgentClient("vm1", agent.endpoint())) {
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> ga.ping(Duration.ofMillis(400))).isInstanceOf(QmpTimeoutException.class)
                    .hasMessageContaining("guest-ping");
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(2));

            silent.set(false);
            // the late answer to the first ping must not be taken for the second one's
            agent.setScript((conn, req, delim) -> req.path("execute").asText().equals("guest-sync-delimited")
                    ? concat(text("{\"return\": {\"late\": true}}\n"), syncReply(req))
                    : text("{\"return\": {\"fresh\": true}}\n"));
            assertThat(ga.execute("guest-info", null, T).path("fresh").asBoolean()).isTrue();
            assertThat(agent.received).extracting(FakeGuestAgent.Received::command)
                    .containsExactly("guest-sync-delimited", "guest-ping", "guest-sync-delimited", "guest-info");
        }
    }

    @Test
    void aSyncThatIsNeverAnsweredNamesTheAgent() throws Exception {
        try (FakeGuestAgent agent = new FakeGuestAgent((conn, req, delim) -> null);
                GuestAgentClient ga = new GuestAgentClient("vm1", agent.endpoint())) {
            assertThatThrownBy(() -> ga.ping(Duration.ofMillis(300))).isInstanceOf(QmpTimeoutException.class)
                    .hasMessageContaining("guest-sync-delimited").hasMessageContaining("qemu-ga");
        }
    }

    @Test
    void aClosedSocketIsReconnectedAndResyncedOnTheNextCall() throws Exception {
        try (FakeGuestAgent agent = new FakeGuestAgent((conn, req, delim) -> normal(req));
                GuestAgentClient ga = new GuestAgentClient("vm1", agent.endpoint())) {
            agent.dropAfter(2); // sync + ping, then the socket closes
            ga.ping(T);
            long until = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            boolean again = false;
            while (!again && System.nanoTime() < until) {
                try {
                    ga.ping(T);
                    again = true;
                } catch (QmpDisconnectedException expectedOnce) {
                    // the call that finds the socket closed fails; the next one reconnects
                }
            }
            assertThat(again).isTrue();
            assertThat(agent.connections()).isEqualTo(2);
            assertThat(agent.received.stream().filter(r -> r.conn() == 2).map(FakeGuestAgent.Received::command))
                    .containsExactly("guest-sync-delimited", "guest-ping");
        }
    }

    @Test
    void anErrorReplyCarriesTheAgentsClassAndWords() throws Exception {
        try (FakeGuestAgent agent = new FakeGuestAgent((conn, req, delim) ->
                req.path("execute").asText().equals("guest-sync-delimited") ? syncReply(req)
                        : text("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no such command\"}}\n"));
                GuestAgentClient ga = new GuestAgentClient("vm1", agent.endpoint())) {
            assertThatThrownBy(() -> ga.execute("guest-nope", null, T)).isInstanceOfSatisfying(
                    QmpErrorException.class, e -> assertThat(e.errorClass()).isEqualTo("CommandNotFound"));
            // an error reply leaves the two ends in step: the next call needs no resync
            assertThatThrownBy(() -> ga.execute("guest-nope", null, T)).isInstanceOf(QmpErrorException.class);
            assertThat(agent.received).extracting(FakeGuestAgent.Received::command)
                    .containsExactly("guest-sync-delimited", "guest-nope", "guest-nope");
        }
    }

    @Test
    void shutdownIsAcceptedWhenNoRefusalComes() throws Exception {
        try (FakeGuestAgent agent = new FakeGuestAgent((conn, req, delim) ->
                req.path("execute").asText().equals("guest-sync-delimited") ? syncReply(req) : null);
                GuestAgentClient ga = new GuestAgentClient("vm1", agent.endpoint())) {
            ga.shutdown(Duration.ofMillis(300));
            assertThat(agent.received.get(1).request().path("arguments").path("mode").asText())
                    .isEqualTo("powerdown");
        }
    }

    @Test
    void noSocketIsAClearConnectError() {
        GuestAgentClient ga = new GuestAgentClient("vm1", new QmpEndpoint.Unix(java.nio.file.Path.of(
                "/tmp/qsup-no-such-dir/ga.sock")));
        assertThatThrownBy(() -> ga.ping(T)).isInstanceOf(QmpConnectException.class)
                .hasMessageContaining("guest agent socket");
    }
}
