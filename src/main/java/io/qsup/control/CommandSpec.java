package io.qsup.control;

import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * The declaration of one control command: its name, what it does, the arguments it accepts and what it returns.
 * {@link CommandTable} holds them all.
 *
 * @param description what the command does, for people; Markdown, no final period
 * @param returns what its {@code return} holds, for people; Markdown
 */
public record CommandSpec(String name, String description, List<ArgumentSpec> arguments, String returns) {
    public CommandSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(returns, "returns");
        arguments = List.copyOf(arguments);
        Set<String> seen = new HashSet<>();
        for (ArgumentSpec a : arguments) {
            if (!seen.add(a.name())) {
                throw new IllegalArgumentException("command '" + name + "' declares argument '" + a.name() + "' twice");
            }
        }
    }

    public Optional<ArgumentSpec> argument(String argumentName) {
        return arguments.stream().filter(a -> a.name().equals(argumentName)).findFirst();
    }
}
