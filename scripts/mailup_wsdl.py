#!/usr/bin/env python3
"""Writes wsdl/MailupSend.wsdl, wsdl/MailupManage.wsdl and wsdl/MailupReport.wsdl
from the operation tables of the MailUp wire contract (specs/mailup.md 2.5-2.7).
Run from the repository root after changing a table; the files are committed."""

NS = "http://services.mailupnet.it/WS"
S, I, B, D, O = "string", "int", "boolean", "dateTime", "options"

LOGIN = [
    ("Login", [("user", S), ("pwd", S), ("url", S)], S),
    ("LoginFromId", [("user", S), ("pwd", S), ("consoleId", I)], S),
    ("Logout", [("accessKey", S)], S),
]

SEND = LOGIN + [
    ("GetIdUser", [("accessKey", S)], S),
    ("GetUserAccess", [("userId", I), ("accessKey", S)], S),
    ("CheckUserHash", [("userID", I), ("userHash", S), ("accessKey", S)], S),
    ("GetCredits", [("accessKey", S)], S),
    ("GetCreditsLists", [("accessKey", S), ("idList", I)], S),
    ("GetLists", [("accessKey", S)], S),
    ("GetListsUser", [("accessKey", S), ("idUser", I)], S),
    ("GetGroups", [("accessKey", S), ("listID", I)], S),
    ("CreateList", [("accessKey", S), ("name", S), ("autoId", S)], S),
    ("CreateList_st", [("accessKey", S), ("name", S), ("autoId", S)], S),
    ("DeleteList", [("accessKey", S), ("listId", I), ("autoId", S)], S),
    ("DeleteList_st", [("accessKey", S), ("listId", I), ("autoId", S)], S),
    ("GetListIdentity", [("accessKey", S), ("autoId", S)], S),
    ("GetListIdentity_st", [("accessKey", S), ("autoId", S)], S),
    ("GetFields", [("accessKey", S)], S),
    ("GetFields_st", [("accessKey", S)], S),
    ("CreateNewsletter", [("accessKey", S), ("listID", I), ("subject", S), ("type", S), ("content", S), ("options", O)], S),
    ("EditNewsletter", [("accessKey", S), ("listID", I), ("newsletterId", I), ("subject", S), ("type", S), ("content", S), ("options", O)], S),
    ("CloneMessage", [("accessKey", S), ("listId", S), ("listGuid", S), ("messageToCloneId", I), ("subject", S)], I),
    ("GetNewsletters", [("accessKey", S), ("listID", I)], S),
    ("GetMessages", [("accessKey", S), ("listID", I)], S),
    ("GetTemplates", [("accessKey", S), ("listID", I)], S),
    ("GetNewsletterCode", [("accessKey", S), ("listID", I), ("newsletterID", I), ("isTemplate", B)], S),
    ("SendNewsletter", [("accessKey", S), ("listID", I), ("newsletterID", I), ("options", O)], S),
    ("SendNewsletterFast", [("accessKey", S), ("listID", I), ("subject", S), ("type", S), ("content", S), ("options", O)], S),
    ("SendSingleNewsletter", [("accessKey", S), ("listID", I), ("subject", S), ("type", S), ("content", S), ("recipientEmail", S), ("options", O)], S),
    ("SendMessageNL", [("accessKey", S), ("fileName", S), ("separator", S), ("listId", S), ("listGuid", S), ("messageId", S), ("senderName", S), ("sender", S), ("subject", S), ("timeDateSending", D), ("sendDelayTest", I)], I),
    ("AddNewsletterQueue", [("accessKey", S), ("deliveryID", I), ("immediate", B)], S),
    ("GetNewsletterQueues", [("accessKey", S), ("listID", I)], S),
    ("GetNewsletterDeliveryStatus", [("accessKey", S), ("deliveryID", I)], S),
    ("GetNewsletterScheduleStatus", [("accessKey", S), ("newsletterID", I)], S),
    ("PrepareNewsletterSchedule", [("accessKey", S), ("listID", I), ("newsletterID", I), ("deliveryDate", S), ("deliveryTime", S), ("adminEmail", S), ("idUser", I), ("note", S)], S),
    ("ScheduleNewsletterQueue", [("accessKey", S), ("listID", I), ("newsletterID", I), ("scheduleID", I), ("deliverydt", S), ("timezone", I)], S),
    ("SetNewsletterQueueOrder", [("accessKey", S), ("scheduleID", I), ("Up", B)], S),
    ("RemoveNewsletterQueue", [("accessKey", S), ("listID", I), ("newsletterID", I), ("deliveryID", I), ("scheduleID", I), ("deleteQueue", B)], S),
    ("StartDelivery", [("accessKey", S)], S),
    ("StopDelivery", [("accessKey", S)], S),
    ("CreateSMS", [("accessKey", S), ("listID", I), ("subject", S), ("text", S), ("options", O)], S),
    ("GetSMS", [("accessKey", S), ("listID", I)], S),
    ("SendSMS", [("accessKey", S), ("listID", I), ("smsID", I), ("options", O)], S),
    ("SendSMSFast", [("accessKey", S), ("listID", I), ("subject", S), ("text", S), ("options", O)], S),
    ("SendSingleSMS", [("accessKey", S), ("listID", I), ("subject", S), ("type", S), ("content", S), ("numero", S), ("options", O)], S),
    ("SendDirectSMS", [("accessKey", S), ("listID", I), ("content", S), ("numero", S), ("options", O)], S),
    ("GetSMSQueues", [("accessKey", S), ("listID", I)], S),
    ("GetSMSDeliveryStatus", [("accessKey", S), ("deliveryID", I)], S),
    ("ScheduleSMSQueue", [("accessKey", S), ("listID", I), ("smsID", I), ("scheduleID", I), ("deliverydt", S), ("timezone", I)], S),
    ("RemoveSMSQueue", [("accessKey", S), ("deliveryID", I), ("scheduleID", I), ("deleteQueue", B)], S),
    ("StartDeliverySMS", [("accessKey", S)], S),
    ("StopDeliverySMS", [("accessKey", S)], S),
]

MANAGE = LOGIN + [
    ("GetIdUser", [("accessKey", S)], S),
    ("GetLists", [("accessKey", S)], S),
    ("GetListsUser", [("accessKey", S), ("idUser", I)], S),
    ("CreateList", [("accessKey", S), ("name", S), ("defaultSettings", S), ("copyTemplate", B), ("options", O)], S),
    ("UpdateList", [("accessKey", S), ("listID", I), ("options", O)], S),
    ("DeleteList", [("accessKey", S), ("listID", I)], S),
    ("GetGroups", [("accessKey", S), ("listID", I)], S),
    ("CreateGroup", [("accessKey", S), ("listID", I), ("groupName", S), ("groupNotes", S)], S),
    ("UpdateGroup", [("accessKey", S), ("groupID", I), ("options", O)], S),
    ("DeleteGroup", [("accessKey", S), ("listID", I), ("groupID", I), ("deleteUsers", B)], S),
]

REPORT = LOGIN + [
    ("ReportByMessage", [("accessKey", S), ("listID", I), ("messageID", I)], S),
    ("ReportByMessageEN", [("accessKey", S), ("listID", I), ("messageID", I)], S),
    ("ReportByUser", [("accessKey", S), ("email", S), ("listID", I), ("messageID", I)], S),
    ("ReportByUserEN", [("accessKey", S), ("email", S), ("listID", I), ("messageID", I)], S),
]


def element(name, params, result):
    out = [f'      <s:element name="{name}">', "        <s:complexType>", "          <s:sequence>"]
    for pname, ptype in params:
        if ptype == O:
            out.append(f'            <s:element minOccurs="0" maxOccurs="1" name="{pname}" type="tns:ArrayOfOption" />')
        elif ptype == S:
            out.append(f'            <s:element minOccurs="0" maxOccurs="1" name="{pname}" type="s:string" />')
        else:
            out.append(f'            <s:element minOccurs="1" maxOccurs="1" name="{pname}" type="s:{ptype}" />')
    out += ["          </s:sequence>", "        </s:complexType>", "      </s:element>"]
    occurs = 'minOccurs="0"' if result == S else 'minOccurs="1"'
    out += [
        f'      <s:element name="{name}Response">',
        "        <s:complexType>",
        "          <s:sequence>",
        f'            <s:element {occurs} maxOccurs="1" name="{name}Result" type="s:{result}" />',
        "          </s:sequence>",
        "        </s:complexType>",
        "      </s:element>",
    ]
    return out


def wsdl(service, description, operations):
    ops = [o[0] for o in operations]
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f"<!-- {service} as espbridge serves it. Written for espbridge by scripts/mailup_wsdl.py",
        "     from the operation tables of the MailUp wire contract (specs/mailup.md, section 2). -->",
        '<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
        'xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:s="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:tns="{NS}" targetNamespace="{NS}">',
        f"  <wsdl:documentation>{description}</wsdl:documentation>",
        "  <wsdl:types>",
        f'    <s:schema elementFormDefault="qualified" targetNamespace="{NS}">',
    ]
    if any(p[1] == O for o in operations for p in o[1]):
        out += [
            '      <s:complexType name="ArrayOfOption">',
            "        <s:sequence>",
            '          <s:element minOccurs="0" maxOccurs="unbounded" name="Option" nillable="true" type="tns:Option" />',
            "        </s:sequence>",
            "      </s:complexType>",
            '      <s:complexType name="Option">',
            "        <s:sequence>",
            '          <s:element minOccurs="0" maxOccurs="1" name="Key" type="s:string" />',
            '          <s:element minOccurs="0" maxOccurs="1" name="Value" />',
            "        </s:sequence>",
            "      </s:complexType>",
        ]
    for name, params, result in operations:
        out += element(name, params, result)
    out += ["    </s:schema>", "  </wsdl:types>"]
    for name in ops:
        out += [
            f'  <wsdl:message name="{name}SoapIn"><wsdl:part name="parameters" element="tns:{name}" /></wsdl:message>',
            f'  <wsdl:message name="{name}SoapOut"><wsdl:part name="parameters" element="tns:{name}Response" /></wsdl:message>',
        ]
    out.append(f'  <wsdl:portType name="{service}Soap">')
    for name in ops:
        out += [
            f'    <wsdl:operation name="{name}">',
            f'      <wsdl:input message="tns:{name}SoapIn" />',
            f'      <wsdl:output message="tns:{name}SoapOut" />',
            "    </wsdl:operation>",
        ]
    out.append("  </wsdl:portType>")
    for binding, prefix in ((f"{service}Soap", "soap"), (f"{service}Soap12", "soap12")):
        out += [
            f'  <wsdl:binding name="{binding}" type="tns:{service}Soap">',
            f'    <{prefix}:binding transport="http://schemas.xmlsoap.org/soap/http" />',
        ]
        for name in ops:
            out += [
                f'    <wsdl:operation name="{name}">',
                f'      <{prefix}:operation soapAction="{NS}/{name}" style="document" />',
                f'      <wsdl:input><{prefix}:body use="literal" /></wsdl:input>',
                f'      <wsdl:output><{prefix}:body use="literal" /></wsdl:output>',
                "    </wsdl:operation>",
            ]
        out.append("  </wsdl:binding>")
    out += [
        f'  <wsdl:service name="{service}">',
        f"    <wsdl:documentation>{description}</wsdl:documentation>",
        f'    <wsdl:port name="{service}Soap" binding="tns:{service}Soap"><soap:address location="http://localhost/{service}.asmx" /></wsdl:port>',
        f'    <wsdl:port name="{service}Soap12" binding="tns:{service}Soap12"><soap12:address location="http://localhost/{service}.asmx" /></wsdl:port>',
        "  </wsdl:service>",
        "</wsdl:definitions>",
        "",
    ]
    return "\n".join(out)


for service, description, operations in (
    ("MailupSend", "Lists, newsletters, sending and SMS (MailUp compatible).", SEND),
    ("MailupManage", "List and group management (MailUp compatible).", MANAGE),
    ("MailupReport", "Message and recipient reports (MailUp compatible).", REPORT),
):
    with open(f"wsdl/{service}.wsdl", "w", encoding="utf-8") as f:
        f.write(wsdl(service, description, operations))
