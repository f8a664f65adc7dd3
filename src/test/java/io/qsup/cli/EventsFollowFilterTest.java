package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.testing.FakeQmpServer;
import org.junit.jupiter.api.Test;

/**
 * qsupd sends every event to a connection until its {@code event-subscribe} takes effect, so {@code qsup events
 * --follow NAME} must not print what arrives before: a scripted server sends another VM's event just then.
 */
class EventsFollowFilterTest {
    private static ObjectNode stateChange(String vm, String from, String to, String cause) {
        return JsonNodeFactory.instance.objectNode().put("vm", vm).put("old", from).put("new", to).put("cause", cause);
    }

    @Test
    void followPrintsOnlyTheNamedVmsAndTypesEvenBeforeTheSubscriptionApplies() {
        try (FakeQmpServer daemon = FakeQmpServer.start(FakeQmpServer.script()
                .greeting().expect("qmp_capabilities").reply()
                .expect("event-subscribe")
                .event("VM_STATE_CHANGED", stateChange("db1", "running", "backoff", "crashed"))
                .event("VM_RESTART_SCHEDULED", JsonNodeFactory.instance.objectNode().put("vm", "beta"))
                .reply()
                .expect("query-events").reply(JsonNodeFactory.instance.arrayNode())
                .event("VM_STATE_CHANGED", stateChange("beta", "stopped", "starting", "operator-start"))
                .disconnect())) {
            CliRun r = CliRun.qsup(daemon.socket(), "events", "--follow", "beta", "--type", "VM_STATE_CHANGED");
            assertThat(r.code()).as(r.toString()).isEqualTo(ExitCodes.UNREACHABLE);
            assertThat(r.out()).as(r.toString())
                    .contains("beta VM_STATE_CHANGED stopped -> starting (operator-start)")
                    .doesNotContain("db1")
                    .doesNotContain("VM_RESTART_SCHEDULED");
        }
    }
}
