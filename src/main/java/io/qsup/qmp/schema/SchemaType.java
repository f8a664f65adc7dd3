package io.qsup.qmp.schema;

import java.util.List;
import java.util.Map;

/**
 * One type of a QEMU's QMP schema, as {@code query-qmp-schema} describes it (QAPI's "Client JSON Protocol
 * introspection"). Types refer to each other by name; QEMU masks the names of everything but built-ins (they read
 * {@code "49"}), so {@link QmpSchema} resolves them and {@link QmpSchema#display} names a type by its shape.
 */
public sealed interface SchemaType {
    String name();

    /**
     * A built-in type. Every integer type of the schema (int8 ... uint64, size) is introspected as {@code int}.
     *
     * @param jsonType {@code string}, {@code int}, {@code number}, {@code boolean}, {@code null} or {@code value}
     */
    record Builtin(String name, String jsonType) implements SchemaType {}

    /** A string from a closed set. */
    record EnumType(String name, List<String> values) implements SchemaType {
        public EnumType {
            values = List.copyOf(values);
        }
    }

    /** A JSON array whose elements are all of one type. */
    record ArrayType(String name, String elementType) implements SchemaType {}

    /**
     * A JSON object. When {@code tag} is set it is a union: the value of the member named {@code tag} picks which
     * variant's members are accepted besides {@code members}.
     *
     * @param variants tag value to the name of the object type holding that variant's members, in schema order
     */
    record ObjectType(String name, List<Member> members, String tag, Map<String, String> variants)
            implements SchemaType {
        public ObjectType {
            members = List.copyOf(members);
            variants = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(variants));
        }

        public Member member(String memberName) {
            for (Member m : members) {
                if (m.name().equals(memberName)) {
                    return m;
                }
            }
            return null;
        }
    }

    /** A value of one of several types, told apart by their JSON type. */
    record AlternateType(String name, List<String> types) implements SchemaType {
        public AlternateType {
            types = List.copyOf(types);
        }
    }

    /**
     * A member of an object type.
     *
     * @param optional true where the introspection gives the member a {@code default}, as QEMU does for optional ones
     */
    record Member(String name, String type, boolean optional, List<String> features) {
        public Member {
            features = List.copyOf(features);
        }
    }
}
