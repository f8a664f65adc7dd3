package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** One command of the control protocol: arguments in, the {@code return} value out, or a {@link ControlException}. */
@FunctionalInterface
public interface ControlCommand {
    JsonNode execute(ObjectNode arguments, ControlSession session) throws ControlException;
}
