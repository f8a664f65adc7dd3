package io.qsup.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;

/** One asynchronous event, for example {@code SHUTDOWN}; {@code raw} is the message exactly as the server sent it. */
public record QmpEvent(String name, JsonNode data, Instant timestamp, JsonNode raw) {}
