package io.qsup.control;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The control socket answers every input as QEMU 7.2 does, in QEMU's words: broken JSON, unexpected members and
 * arguments, wrong types, capabilities, and events sent to every negotiated client. Driven byte by byte with a raw
 * client, as socat or a stock QMP library would.
 */
class ControlWireTest {
    private Path dir;
    private ControlServer server;
    private EventHub hub;

    @BeforeEach
    void start() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-wire");
        hub = new EventHub();
        Map<String, ControlCommand> table = new HashMap<>();
        EventCommands.register(table, hub);
        server = new ControlServer(dir.resolve("qsupd.sock"), "users", table, hub, ControlServer.Limits.defaults());
        server.start();
    }

    @AfterEach
    void stop() throws IOException {
        server.close();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private RawControlClient client() throws IOException {
        return new RawControlClient(server.socketPath()).negotiated();
    }

    private static String desc(JsonNode reply) {
        return reply.path("error").path("desc").asText();
    }

    @Test
    void anUnclosedStringIsAnsweredAtOnceAndEveryLaterCommandIsAnswered() throws IOException {
        try (RawControlClient c = client()) {
            JsonNode broken = c.command("{\"execute\": \"q");
            assertThat(broken.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(desc(broken)).isEqualTo("JSON parse error, stray '\"q\n'");
            assertThat(broken.has("id")).isFalse();
            for (int i = 1; i <= 3; i++) {
                JsonNode r = c.command("{\"execute\":\"query-events\",\"id\":" + i + "}");
                assertThat(r.path("id").asInt()).as("%s", r).isEqualTo(i);
                assertThat(r.path("return").isArray()).as("%s", r).isTrue();
            }
        }
    }

    @Test
    void aControlCharacterInAStringCostsThatLineOnly() throws IOException {
        try (RawControlClient c = client()) {
            JsonNode broken = c.command("{\"execute\":\"query-events\",\"id\":\"a\u0001b\"}");
            assertThat(desc(broken)).isEqualTo("JSON parse error, stray '\"a\u0001'");
            // one error for the line, not a second one for its tail: the next message is the next command's reply
            JsonNode next = c.command("{\"execute\":\"query-events\",\"id\":2}");
            assertThat(next.path("id").asInt()).as("%s", next).isEqualTo(2);
        }
    }

    @Test
    void garbageAndABracketThatClosesTheWrongThingCostTheirLineOnly() throws IOException {
        try (RawControlClient c = client()) {
            assertThat(desc(c.command("hello there"))).startsWith("JSON parse error, invalid keyword 'hello'");
            assertThat(desc(c.command("{\"execute\": [}"))).isEqualTo("JSON parse error, unbalanced '}': expected ']'");
            assertThat(desc(c.command("[1, 2]"))).isEqualTo("QMP input must be a JSON object");
            assertThat(c.command("{'execute': 'query-events', 'id': 'single quotes'}").path("id").asText())
                    .isEqualTo("single quotes");
        }
    }

    @Test
    void anUnexpectedArgumentIsRefusedAndTheCommandDoesNotRun() throws Exception {
        try (RawControlClient c = client()) {
            JsonNode r = c.command("{\"execute\":\"query-events\",\"arguments\":{\"bogus\":1},\"id\":2}");
            assertThat(r.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(desc(r)).isEqualTo("Parameter 'bogus' is unexpected");
            assertThat(r.path("id").asInt()).isEqualTo(2);

            // a misspelt filter must not narrow anything: the session still gets every event
            JsonNode typo = c.command("{\"execute\":\"event-subscribe\",\"arguments\":{\"vms\":[\"web1\"],"
                    + "\"evnets\":[\"VM_STATE_CHANGED\"]}}");
            assertThat(desc(typo)).isEqualTo("Parameter 'evnets' is unexpected");
            hub.publish(event("db1", "stopped"));
            assertThat(c.nextEvent().path("data").path("vm").asText()).isEqualTo("db1");
        }
    }

    @Test
    void aWrongTypeNamesTheParameterAndTheTypeExpected() throws IOException {
        try (RawControlClient c = client()) {
            assertThat(desc(c.command("{\"execute\":\"query-events\",\"arguments\":{\"vms\":\"web1\"}}")))
                    .isEqualTo("Invalid parameter type for 'vms', expected: array");
            assertThat(desc(c.command("{\"execute\":\"query-events\",\"arguments\":{\"vms\":[\"web1\",5]}}")))
                    .isEqualTo("Invalid parameter type for 'vms[1]', expected: string");
            // null is a value of the wrong type, not a missing argument, as in QEMU
            assertThat(desc(c.command("{\"execute\":\"query-events\",\"arguments\":{\"events\":null}}")))
                    .isEqualTo("Invalid parameter type for 'events', expected: array");
        }
    }

    @Test
    void theEnvelopeHoldsExecuteArgumentsAndIdOnly() throws IOException {
        try (RawControlClient c = client()) {
            JsonNode unknown = c.command("{\"execute\":\"query-events\",\"bogus-member\":1,\"id\":3}");
            assertThat(unknown.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(desc(unknown)).isEqualTo("QMP input member 'bogus-member' is unexpected");
            assertThat(unknown.path("id").asInt()).isEqualTo(3);
            assertThat(desc(c.command("{\"exec-oob\":\"query-events\"}")))
                    .isEqualTo("QMP input member 'exec-oob' is unexpected");
            assertThat(desc(c.command("{\"execute\":5}"))).isEqualTo("QMP input member 'execute' must be a string");
            assertThat(desc(c.command("{\"id\":1}"))).isEqualTo("QMP input lacks member 'execute'");
            assertThat(desc(c.command("{\"execute\":\"query-events\",\"arguments\":[]}")))
                    .isEqualTo("QMP input member 'arguments' must be an object");
            assertThat(c.command("{\"execute\":\"query-events\",\"id\":4}").path("return").isArray()).isTrue();
        }
    }

    @Test
    void aDuplicateKeyIsAJsonParseErrorAndNothingRuns() throws IOException {
        try (RawControlClient c = client()) {
            JsonNode dup = c.command("{\"execute\":\"event-unsubscribe\",\"execute\":\"query-events\",\"id\":5}");
            assertThat(desc(dup)).startsWith("JSON parse error, duplicate key").contains("'execute'");
            assertThat(dup.has("id")).as("no id: the request could not be read").isFalse();
            // event-unsubscribe did not run: events still arrive
            hub.publish(event("web1", "running"));
            assertThat(c.nextEvent().path("data").path("vm").asText()).isEqualTo("web1");
        }
    }

    @Test
    void aCapabilityThatWasNotOfferedIsRefusedAndNegotiationCanBeRetried() throws IOException {
        try (RawControlClient c = new RawControlClient(server.socketPath())) {
            assertThat(c.read().path("QMP").path("capabilities")).isEmpty();
            JsonNode oob = c.command("{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}");
            assertThat(oob.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(desc(oob)).isEqualTo("Capability oob not available");
            assertThat(desc(c.command("{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"bogus\"]}}")))
                    .isEqualTo("Parameter 'enable[0]' does not accept value 'bogus'");
            assertThat(desc(c.command("{\"execute\":\"qmp_capabilities\",\"arguments\":{\"bogus\":1}}")))
                    .isEqualTo("Parameter 'bogus' is unexpected");
            // still not negotiated
            JsonNode early = c.command("{\"execute\":\"query-events\"}");
            assertThat(early.path("error").path("class").asText()).isEqualTo("CommandNotFound");
            assertThat(desc(early)).isEqualTo("Expecting capabilities negotiation with 'qmp_capabilities'");

            assertThat(c.command("{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[]}}").has("return"))
                    .isTrue();
            JsonNode again = c.command("{\"execute\":\"qmp_capabilities\"}");
            assertThat(again.path("error").path("class").asText()).isEqualTo("CommandNotFound");
            assertThat(desc(again)).isEqualTo("Capabilities negotiation is already complete, command ignored");
        }
    }

    @Test
    void aNegotiatedClientGetsEveryEventWithoutAskingAndSubscribeNarrowsThem() throws IOException {
        try (RawControlClient c = client()) {
            hub.publish(event("web1", "running"));
            JsonNode e = c.nextEvent();
            assertThat(e.path("event").asText()).isEqualTo("VM_STATE_CHANGED");
            assertThat(e.path("data").path("vm").asText()).isEqualTo("web1");

            assertThat(c.command("{\"execute\":\"event-subscribe\",\"arguments\":{\"vms\":[\"db1\"]}}").has("return"))
                    .isTrue();
            hub.publish(event("web1", "stopped"));
            hub.publish(event("db1", "running"));
            assertThat(c.nextEvent().path("data").path("vm").asText()).as("only db1 now").isEqualTo("db1");

            c.command("{\"execute\":\"event-unsubscribe\"}");
            hub.publish(event("db1", "stopped"));
            JsonNode reply = c.command("{\"execute\":\"query-events\",\"arguments\":{\"vms\":[\"nobody\"]},\"id\":9}");
            assertThat(reply.path("id").asInt()).isEqualTo(9);
            assertThat(c.events).as("nothing after event-unsubscribe").isEmpty();

            c.command("{\"execute\":\"event-subscribe\"}");
            hub.publish(event("web1", "running"));
            assertThat(c.nextEvent().path("data").path("vm").asText()).as("all again").isEqualTo("web1");
        }
    }

    @Test
    void theNegotiationReplyComesBeforeAnyEvent() throws Exception {
        // QEMU's Python library reads the very next message as the reply to qmp_capabilities
        AtomicBoolean publishing = new AtomicBoolean(true);
        Thread publisher = Thread.ofPlatform().daemon().start(() -> {
            while (publishing.get()) {
                hub.publish(event("web1", "running"));
                // a few thousand a second: fast enough to fall inside the negotiation, slow enough for the queue
                java.util.concurrent.locks.LockSupport.parkNanos(200_000);
            }
        });
        try {
            for (int i = 0; i < 20; i++) {
                try (RawControlClient c = new RawControlClient(server.socketPath())) {
                    assertThat(c.read().has("QMP")).isTrue();
                    c.send("{\"execute\":\"qmp_capabilities\",\"id\":\"neg\"}\n");
                    JsonNode first = c.read();
                    assertThat(first.path("id").asText()).as("first message after negotiating: %s", first)
                            .isEqualTo("neg");
                    assertThat(c.read().path("event").asText()).as("then events").isEqualTo("VM_STATE_CHANGED");
                }
            }
        } finally {
            publishing.set(false);
            publisher.join();
        }
    }

    private static ControlEvent event(String vm, String newState) {
        var data = JsonNodeFactory.instance.objectNode().put("old", "starting").put("new", newState);
        return new ControlEvent("VM_STATE_CHANGED", vm, data, Instant.now());
    }
}
