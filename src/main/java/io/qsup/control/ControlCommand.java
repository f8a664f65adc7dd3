package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The handler of one control command: checked arguments in, the {@code return} value out, or a
 * {@link ControlException}. Its declaration (name, arguments) lives in {@link CommandTable}; the arguments have been
 * checked against it before the handler runs.
 */
@FunctionalInterface
public interface ControlCommand {
    JsonNode execute(Arguments arguments, ControlSession session) throws ControlException;
}
