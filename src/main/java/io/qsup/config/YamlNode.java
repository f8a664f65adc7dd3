package io.qsup.config;

import java.util.List;

/**
 * A parsed YAML value that remembers where it was written, so every validation error can name its line and
 * column: a mapping, a sequence or a scalar.
 */
sealed interface YamlNode permits YamlNode.Mapping, YamlNode.Sequence, YamlNode.Scalar {

    /** Where the value starts in its file. */
    Location location();

    /** A human word for the kind of value, used in "expected X, got Y" messages. */
    String describe();

    /** A 1-based line and column. */
    record Location(int line, int column) {
        static final Location FILE = new Location(0, 0);
    }

    /** One key of a mapping, with the location of the key itself. */
    record Entry(String key, Location keyLocation, YamlNode value) {}

    /** A YAML mapping, keys in file order (duplicates kept, so they can be reported). */
    record Mapping(Location location, List<Entry> entries) implements YamlNode {
        @Override
        public String describe() {
            return "a mapping";
        }
    }

    /** A YAML sequence. */
    record Sequence(Location location, List<YamlNode> items) implements YamlNode {
        @Override
        public String describe() {
            return "a list";
        }
    }

    /** A YAML scalar with the type YAML's resolution gave it and its text. */
    record Scalar(Location location, Kind kind, String text) implements YamlNode {
        @Override
        public String describe() {
            return switch (kind) {
                case NULL -> "nothing";
                case BOOLEAN -> "the boolean " + text;
                case INTEGER, FLOAT -> "the number " + text;
                case STRING -> "the string '" + Values.printable(text) + "'";
            };
        }

        /** The YAML type of a scalar. */
        enum Kind {
            STRING,
            INTEGER,
            FLOAT,
            BOOLEAN,
            NULL
        }
    }
}
